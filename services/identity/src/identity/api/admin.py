"""The admin API: users under ``/admin/users``, clients under ``/admin/clients``.

Every route needs a bearer access token for the audience ``identity`` (verified
by ``request.app.state.access_tokens``): ``users:read`` to read, ``users:write``
to change. Clients are administered with the same two scopes, the identity
admin API's scopes in the platform contract. Token problems answer as RFC 6750
section 3 says (401 ``invalid_token``, 403 ``insufficient_scope``, with
``WWW-Authenticate``); every other error is an RFC 9457 problem, mapped from
the accounts errors in :class:`AdminRoute`.
"""

import base64
import binascii
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from identity.accounts import Accounts, UserChanges
from identity.api.admin_schemas import (
    MAX_PAGE_SIZE,
    ClientOut,
    ClientPage,
    ClientPatch,
    ClientSecretOut,
    ClientWithSecret,
    NewUser,
    UserOut,
    UserPage,
    UserPatch,
)
from identity.domain.users import UserProfile
from identity.errors import Conflict, IdentityError, InvalidField, NotFound
from identity.registrations import ClientRegistration
from identity.storage.models import storable
from servicekit.problems import Problem, describe_validation_errors
from servicekit.tokens import (
    AccessToken,
    InvalidRequest,
    InvalidToken,
    bearer_token,
    www_authenticate,
)

READ_SCOPE = "users:read"
WRITE_SCOPE = "users:write"
NO_STORE = {"Cache-Control": "no-store"}


def _invalid_field(exc: InvalidField) -> Problem:
    return Problem(
        422,
        f"The request is not valid: {exc.field}: {exc.reason}.",
        title="Invalid request",
        errors=[{"field": exc.field, "in": "body", "reason": exc.reason}],
    )


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


def problem_for(exc: IdentityError) -> Problem:
    """The problem document an accounts error answers as (the one mapping)."""
    if isinstance(exc, NotFound):
        return Problem(404, _sentence(str(exc)))
    if isinstance(exc, Conflict):
        return Problem(409, _sentence(str(exc)))
    if isinstance(exc, InvalidField):
        return _invalid_field(exc)
    raise exc


class AdminRoute(APIRoute):
    """A route whose accounts errors become problems, here and nowhere else.

    Its docstring's first line is its OpenAPI summary.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if kwargs.get("summary") is None and endpoint.__doc__:
            kwargs["summary"] = endpoint.__doc__.strip().splitlines()[0]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(
        self,
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (NotFound, Conflict, InvalidField) as exc:
                raise problem_for(exc) from exc

        return handle


def _token_problem(status: int, error: str, description: str, **extra: str) -> Problem:
    # RFC 6750 section 3: the challenge carries the error; the body repeats it
    # for clients that read bodies.
    return Problem(
        status,
        _sentence(description),
        headers={
            "WWW-Authenticate": www_authenticate(
                realm="identity", error=error, description=description, **extra
            )
        },
        error=error,
        error_description=description,
    )


# Declares the scheme in the OpenAPI document; the header itself is parsed by
# servicekit's bearer_token, which follows RFC 6750 section 2.1 exactly.
_bearer_scheme = HTTPBearer(auto_error=False, description="Access token, aud identity")


def require_scope(scope: str) -> Callable[..., Awaitable[AccessToken]]:
    """A dependency that admits a valid token for ``identity`` granting ``scope``."""

    async def verified(
        request: Request,
        _declared: Annotated[
            HTTPAuthorizationCredentials | None, Security(_bearer_scheme)
        ],
    ) -> AccessToken:
        try:
            token = bearer_token(request.headers.get("authorization"))
        except InvalidRequest as exc:
            raise _token_problem(400, "invalid_request", exc.description) from exc
        if token is None:
            # RFC 6750 section 3.1: no credentials, so no error code.
            raise Problem(
                401,
                "A bearer access token is required (RFC 6750).",
                headers={"WWW-Authenticate": www_authenticate(realm="identity")},
            )
        verifier = getattr(request.app.state, "access_tokens", None)
        if verifier is None:
            raise Problem(503, "Access tokens cannot be verified yet.")
        try:
            access_token: AccessToken = await verifier.verify(token)
        except InvalidToken as exc:
            raise _token_problem(401, "invalid_token", exc.description) from exc
        if not access_token.has_scopes([scope]):
            raise _token_problem(
                403,
                "insufficient_scope",
                f"the token does not grant {scope!r}",
                scope=scope,
            )
        return access_token

    return verified


def _accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


AccountsDep = Annotated[Accounts, Depends(_accounts)]
Reader = Annotated[AccessToken, Depends(require_scope(READ_SCOPE))]
Writer = Annotated[AccessToken, Depends(require_scope(WRITE_SCOPE))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="next_cursor of the last page.")
]


def encode_cursor(last_key: str) -> str:
    """An opaque cursor naming the last item of a page."""
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor names; a malformed cursor is a 422 naming ``cursor``."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        if not storable(key):
            raise ValueError("not storable")
        return key
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(
            422,
            "The request is not valid: cursor: not a cursor this API gave.",
            title="Invalid request",
            errors=[
                {
                    "field": "cursor",
                    "in": "query",
                    "reason": "not a cursor this API gave",
                }
            ],
        ) from None


def _location(request: Request, path: str) -> str:
    # Absolute under the configured issuer: behind the gateway the public path
    # has a prefix (/auth) this service never sees.
    accounts: Accounts = request.app.state.accounts
    return f"{accounts.settings.issuer}{path}"


users = APIRouter(prefix="/admin/users", tags=["admin: users"], route_class=AdminRoute)
clients = APIRouter(
    prefix="/admin/clients", tags=["admin: clients"], route_class=AdminRoute
)


@users.post("", status_code=201, response_model=UserOut)
async def create_user(
    body: NewUser,
    request: Request,
    response: Response,
    accounts: AccountsDep,
    _: Writer,
) -> UserOut:
    """Create a user."""
    user = await accounts.create_user(
        UserProfile(
            email=body.email,
            email_verified=body.email_verified,
            name=body.name,
            given_name=body.given_name,
            family_name=body.family_name,
        ),
        body.password,
    )
    response.headers["Location"] = _location(request, f"/admin/users/{user.id}")
    return UserOut.of(user)


@users.get("", response_model=UserPage)
async def list_users(
    accounts: AccountsDep, _: Reader, limit: Limit = 50, cursor: Cursor = None
) -> UserPage:
    """List users, ordered by id, one page at a time."""
    page = await accounts.list_users(after=decode_cursor(cursor), limit=limit + 1)
    next_cursor = encode_cursor(page[limit - 1].id) if len(page) > limit else None
    return UserPage(
        items=[UserOut.of(u) for u in page[:limit]], next_cursor=next_cursor
    )


@users.get("/{user_id}", response_model=UserOut)
async def read_user(user_id: str, accounts: AccountsDep, _: Reader) -> UserOut:
    """Read a user."""
    user = await accounts.find_user(user_id)
    if user is None:
        raise Problem(404, f"No user has the id {user_id!r}.")
    return UserOut.of(user)


@users.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user_id: str, body: UserPatch, accounts: AccountsDep, _: Writer
) -> UserOut:
    """Change some of a user's attributes, or their password."""
    given = body.model_dump(exclude_unset=True)
    for required in ("email", "password", "email_verified"):
        if required in given and given[required] is None:
            raise _invalid_field(InvalidField(required, "may not be null"))
    user = await accounts.update_user(user_id, UserChanges(**given))
    return UserOut.of(user)


@users.post("/{user_id}/disable", response_model=UserOut)
async def disable_user(user_id: str, accounts: AccountsDep, _: Writer) -> UserOut:
    """Disable a user: no more logins, and their tokens and sessions are revoked."""
    return UserOut.of(await accounts.set_user_disabled(user_id, True))


@users.post("/{user_id}/enable", response_model=UserOut)
async def enable_user(user_id: str, accounts: AccountsDep, _: Writer) -> UserOut:
    """Enable a disabled user."""
    return UserOut.of(await accounts.set_user_disabled(user_id, False))


@users.delete("/{user_id}", status_code=204)
async def delete_user(user_id: str, accounts: AccountsDep, _: Writer) -> Response:
    """Delete a user, after revoking their tokens and sessions."""
    await accounts.delete_user(user_id)
    return Response(status_code=204)


@clients.post("", status_code=201, response_model=ClientWithSecret)
async def create_client(
    body: ClientRegistration,
    request: Request,
    response: Response,
    accounts: AccountsDep,
    _: Writer,
) -> ClientWithSecret:
    """Register a client; a confidential client's secret is in this answer only."""
    client, secret = await accounts.register_client(body.to_client())
    response.headers["Location"] = _location(
        request, f"/admin/clients/{client.client_id}"
    )
    response.headers.update(NO_STORE)
    return ClientWithSecret(**ClientOut.of(client).model_dump(), client_secret=secret)


@clients.get("", response_model=ClientPage)
async def list_clients(
    accounts: AccountsDep, _: Reader, limit: Limit = 50, cursor: Cursor = None
) -> ClientPage:
    """List clients, ordered by client_id, one page at a time."""
    page = await accounts.list_clients(after=decode_cursor(cursor), limit=limit + 1)
    next_cursor = (
        encode_cursor(page[limit - 1].client_id) if len(page) > limit else None
    )
    return ClientPage(
        items=[ClientOut.of(c) for c in page[:limit]], next_cursor=next_cursor
    )


@clients.get("/{client_id}", response_model=ClientOut)
async def read_client(client_id: str, accounts: AccountsDep, _: Reader) -> ClientOut:
    """Read a client's registration."""
    client = await accounts.find_client(client_id)
    if client is None:
        raise Problem(404, f"No client has the client_id {client_id!r}.")
    return ClientOut.of(client)


@clients.patch("/{client_id}", response_model=ClientWithSecret)
async def update_client(
    client_id: str,
    body: ClientPatch,
    response: Response,
    accounts: AccountsDep,
    _: Writer,
) -> ClientWithSecret:
    """Change a client's registration; a client made confidential gets a secret."""
    current = await accounts.find_client(client_id)
    if current is None:
        raise Problem(404, f"No client has the client_id {client_id!r}.")
    try:
        registration = ClientRegistration.model_validate(
            body.applied_to(current).model_dump()
        )
    except ValidationError as exc:
        raise _validation_problem(exc) from exc
    client, secret = await accounts.update_client(registration.to_client())
    response.headers.update(NO_STORE)
    return ClientWithSecret(**ClientOut.of(client).model_dump(), client_secret=secret)


def _validation_problem(exc: ValidationError) -> Problem:
    errors = [{**e, "in": "body"} for e in describe_validation_errors(exc.errors())]
    summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return Problem(
        422,
        f"The request is not valid: {summary}.",
        title="Invalid request",
        errors=errors,
    )


@clients.delete("/{client_id}", status_code=204)
async def delete_client(client_id: str, accounts: AccountsDep, _: Writer) -> Response:
    """Delete a client; tokens it holds expire on their own."""
    await accounts.delete_client(client_id)
    return Response(status_code=204)


@clients.post("/{client_id}/secret", response_model=ClientSecretOut)
async def rotate_client_secret(
    client_id: str, response: Response, accounts: AccountsDep, _: Writer
) -> ClientSecretOut:
    """Give a confidential client a new secret, shown once; the old one stops."""
    secret = await accounts.rotate_client_secret(client_id)
    response.headers.update(NO_STORE)
    return ClientSecretOut(client_id=client_id, client_secret=secret)
