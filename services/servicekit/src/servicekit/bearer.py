"""Bearer-token authentication of a request (RFC 6750), for FastAPI routes.

:class:`BearerAuthentication` reads the token from the ``Authorization``
header only, verifies it with a :class:`~servicekit.tokens.TokenVerifier`, and
turns every failure into a :class:`~servicekit.problems.Problem` that carries
the RFC 6750 section 3 challenge in ``WWW-Authenticate`` and the error code in
the body (``error``, ``error_description``), so a service maps it with the rest
of its problems.

- No credentials at all: 401 with a bare challenge (section 3.1 says such a
  response SHOULD NOT carry an error code).
- A malformed header, several ``Authorization`` headers, or a token in the
  query string: 400 ``invalid_request``. OAuth 2.1 section 5.2 removed the
  ``access_token`` query parameter of RFC 6750 section 2.3 because URLs leak
  into logs and ``Referer``; a token sent that way is refused, not ignored, so
  that the client learns why it is not authenticated.
- A token that does not verify: 401 ``invalid_token``.
- A verified token without the scope an operation needs: 403
  ``insufficient_scope`` naming that scope (:func:`insufficient_scope`).
- No keys yet from the issuer: 503, because the token may well be good.
"""

from collections.abc import Iterable

from starlette.requests import Request

from servicekit.problems import Problem
from servicekit.tokens import (
    AccessToken,
    InvalidRequest,
    InvalidToken,
    KeysUnavailable,
    TokenVerifier,
    bearer_token,
    www_authenticate,
)

QUERY_TOKEN_PARAMETER = "access_token"  # noqa: S105 - a parameter name
KEYS_RETRY_AFTER_SECONDS = 5


def header_safe(text: str) -> str:
    """``text`` reduced to printable ASCII, so it can sit in a header value.

    Descriptions quote values from the token (its ``kid``, its ``alg``), which
    an attacker chooses: a CR, LF or non-Latin-1 character must not reach the
    response headers.
    """
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _challenge(
    realm: str,
    error: str | None = None,
    *,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    return www_authenticate(
        realm=realm,
        error=error,
        description=None if description is None else header_safe(description),
        scope=scope,
    )


def invalid_request(description: str, *, realm: str) -> Problem:
    """400 ``invalid_request`` (RFC 6750 section 3.1)."""
    return Problem(
        400,
        description,
        headers={
            "WWW-Authenticate": _challenge(
                realm, "invalid_request", description=description
            )
        },
        error="invalid_request",
        error_description=description,
    )


def invalid_token(description: str, *, realm: str) -> Problem:
    """401 ``invalid_token`` (RFC 6750 section 3.1)."""
    return Problem(
        401,
        description,
        headers={
            "WWW-Authenticate": _challenge(
                realm, "invalid_token", description=description
            )
        },
        error="invalid_token",
        error_description=description,
    )


def missing_token(*, realm: str) -> Problem:
    """401 without an error code: the request had no credentials at all."""
    return Problem(
        401,
        "This API needs an access token: send 'Authorization: Bearer <token>'.",
        headers={"WWW-Authenticate": _challenge(realm)},
    )


def insufficient_scope(scope: str, *, realm: str) -> Problem:
    """403 ``insufficient_scope`` naming the scope the operation needs."""
    description = f"this operation needs the scope {scope!r}"
    return Problem(
        403,
        description,
        headers={
            "WWW-Authenticate": _challenge(
                realm, "insufficient_scope", description=description, scope=scope
            )
        },
        error="insufficient_scope",
        error_description=description,
        scope=scope,
    )


def keys_unavailable(description: str) -> Problem:
    """503: the issuer's keys never arrived, so no token can be judged yet."""
    return Problem(
        503,
        f"Tokens cannot be verified yet: {description}.",
        headers={"Retry-After": str(KEYS_RETRY_AFTER_SECONDS)},
    )


def _authorization_header(request: Request) -> str | None:
    values = [
        value.decode("latin-1")
        for name, value in request.scope["headers"]
        if name == b"authorization"
    ]
    if len(values) > 1:
        raise InvalidRequest(
            "send one Authorization header, not several (RFC 6750 section 2)"
        )
    return values[0] if values else None


class BearerAuthentication:
    """A FastAPI dependency: the verified :class:`AccessToken` of the request.

    ``Annotated[AccessToken, Depends(BearerAuthentication(verifier, realm=...))]``
    """

    def __init__(self, verifier: TokenVerifier, *, realm: str) -> None:
        self.verifier = verifier
        self.realm = realm

    async def __call__(self, request: Request) -> AccessToken:
        return await self.authenticate(request)

    async def authenticate(self, request: Request) -> AccessToken:
        """The request's verified token, or the :class:`Problem` to answer."""
        try:
            # The raw bytes first: most requests have no query string at all,
            # and parsing one costs more than the check.
            if (
                QUERY_TOKEN_PARAMETER.encode() in request.scope["query_string"]
                and QUERY_TOKEN_PARAMETER in request.query_params
            ):
                raise InvalidRequest(
                    "access tokens are not accepted in the query string "
                    "(OAuth 2.1 section 5.2); send 'Authorization: Bearer <token>'"
                )
            token = bearer_token(_authorization_header(request))
        except InvalidRequest as exc:
            raise invalid_request(exc.description, realm=self.realm) from exc

        if token is None:
            raise missing_token(realm=self.realm)

        try:
            return await self.verifier.verify(token)
        except KeysUnavailable as exc:
            raise keys_unavailable(exc.description) from exc
        except InvalidToken as exc:
            raise invalid_token(exc.description, realm=self.realm) from exc

    def require(self, token: AccessToken, any_of: Iterable[str]) -> None:
        """Raise 403 unless ``token`` holds at least one scope of ``any_of``.

        The challenge names the first scope, the one a client should ask for.
        """
        wanted = list(any_of)
        if not token.scopes.intersection(wanted):
            raise insufficient_scope(wanted[0], realm=self.realm)
