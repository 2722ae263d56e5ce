"""The authorization endpoint, the login and consent steps, and logout.

OAuth 2.1 section 4.1 with OpenID Connect Core 3.1.2: ``response_type=code``
only, PKCE S256 for every client, ``iss`` in every response (RFC 9207).
The authorization request travels in the login and consent forms (hidden,
CSRF-protected fields) and is validated again on every step, so no
replica keeps state in memory and a tampered field is caught like a bad
request.
"""

import logging
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from identity.api import pages
from identity.api.parameters import Parameters, parameters_of
from identity.domain.clients import Client
from identity.domain.grants import (
    AuthorizationRequest,
    audiences,
    check_code_challenge,
    needs_login,
    parse_max_age,
    parse_prompt,
    redirect_uri_matches,
    requested_scope,
)
from identity.domain.users import User
from identity.errors import (
    AccessDenied,
    ConsentRequired,
    InvalidRequest,
    LoginFailed,
    LoginRequired,
    LoginThrottled,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
    UntrustedAuthorizationRequest,
)
from identity.provider import Provider, ProviderDep
from identity.storage.grants import BrowserSession
from servicekit.tokens import InvalidToken

logger = logging.getLogger(__name__)

router = APIRouter(tags=["authorization"])

# Parameters carried from the authorization request through login and consent.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
)
# Form fields of our own pages, never part of the authorization request.
OWN_FIELDS = frozenset({"csrf_token", "email", "password", "action"})


class Flow:
    """One authorization request being answered: its client and where to reply."""

    def __init__(
        self, provider: Provider, request: Request, params: Parameters, client: Client
    ) -> None:
        self.provider = provider
        self.request = request
        self.params = params
        self.client = client
        self.redirect_uri = _trusted_redirect_uri(client, params)
        self.status = 303 if request.method == "POST" else 302

    def redirect(self, **values: str | None) -> RedirectResponse:
        """Back to the client, with ``iss`` and ``state`` (RFC 9207 section 2)."""
        query = {k: v for k, v in values.items() if v is not None}
        query["iss"] = self.provider.issuer
        state = self.params.get("state")
        if state is not None and "state" not in self.params.repeated:
            query["state"] = state
        parts = urlsplit(self.redirect_uri)
        joined = "&".join(q for q in (parts.query, urlencode(query)) if q)
        location = urlunsplit((*parts[:3], joined, ""))
        response = RedirectResponse(location, status_code=self.status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def error(self, exc: OAuthError) -> RedirectResponse:
        return self.redirect(error=exc.error, error_description=exc.description)

    def carried(self) -> list[tuple[str, str]]:
        fields = [(n, v) for n in CARRIED if (v := self.params.get(n)) is not None]
        return fields + [("resource", value) for value in self.params.resource]


def _trusted_redirect_uri(client: Client, params: Parameters) -> str:
    if "redirect_uri" in params.repeated:
        raise UntrustedAuthorizationRequest("the redirect_uri parameter is repeated")
    given = params.get("redirect_uri")
    if given is None:
        # OAuth 2.1 section 2.3.2: optional only with a single registered URI.
        if len(client.redirect_uris) == 1:
            return client.redirect_uris[0]
        raise UntrustedAuthorizationRequest("the redirect_uri parameter is required")
    if not redirect_uri_matches(client.redirect_uris, given):
        raise UntrustedAuthorizationRequest(
            f"the redirect_uri {given!r} is not registered for this client"
        )
    return given


async def _client(provider: Provider, params: Parameters) -> Client:
    if "client_id" in params.repeated:
        raise UntrustedAuthorizationRequest("the client_id parameter is repeated")
    client_id = params.get("client_id")
    if client_id is None:
        raise UntrustedAuthorizationRequest("the client_id parameter is required")
    client = await provider.accounts.find_client(client_id)
    if client is None:
        raise UntrustedAuthorizationRequest(
            f"no client has the client_id {client_id!r}"
        )
    return client


def authorization_request(flow: Flow) -> AuthorizationRequest:
    """Every rule of OIDC Core 3.1.2.1 / OAuth 2.1 4.1.1 that may be redirected."""
    params, client = flow.params, flow.client
    params.reject_repeated()
    response_type = params.get("response_type")
    if response_type != "code":
        raise UnsupportedResponseType(
            f"response_type must be 'code', got {response_type!r}"
        )
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("the client may not use the authorization code grant")
    challenge = check_code_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    scope = requested_scope(client, params.get("scope"))
    resource = audiences(
        client,
        scope - {"openid", "offline_access"},
        params.resource,
        flow.provider.issuer,
    )
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=flow.redirect_uri,
        scope=scope,
        state=params.get("state"),
        nonce=params.get("nonce"),
        code_challenge=challenge,
        prompt=parse_prompt(params.get("prompt")),
        max_age=parse_max_age(params.get("max_age")),
        login_hint=params.get("login_hint"),
        resource=resource,
    )


async def _current_session(
    provider: Provider, request: Request
) -> tuple[BrowserSession, User] | None:
    session = await provider.grants.find_session(
        request.cookies.get(pages.SESSION_COOKIE)
    )
    if session is None:
        return None
    user = await provider.accounts.find_user(session.user_id)
    if user is None or user.disabled:
        return None
    return session, user


def _login_page(
    flow: Flow,
    auth: AuthorizationRequest,
    *,
    error: str | None = None,
    status_code: int = 200,
    email: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return pages.render(
        flow.provider,
        flow.request,
        "login.html",
        status_code=status_code,
        headers=headers,
        action=flow.provider.url("/login"),
        carried=flow.carried(),
        client_name=flow.client.name,
        email=email or auth.login_hint or "",
        error=error,
    )


async def _continue(
    flow: Flow,
    auth: AuthorizationRequest,
    signed_in: tuple[BrowserSession, User] | None,
    *,
    fresh_login: bool,
) -> Response:
    """After the request is valid: sign in if needed, consent if needed, reply."""
    auth_time = signed_in[0].auth_time if signed_in else None
    if signed_in is None or (
        not fresh_login and needs_login(auth, auth_time, time.time())
    ):
        if "none" in auth.prompt:
            return flow.error(LoginRequired("the user is not signed in"))
        return _login_page(flow, auth)
    session, user = signed_in

    if not flow.client.skip_consent:
        consented = await flow.provider.grants.consented_scope(user.id, auth.client_id)
        if "consent" in auth.prompt or not auth.scope <= consented:
            if "none" in auth.prompt:
                return flow.error(ConsentRequired("the user has not consented"))
            return _consent_page(flow, auth, user)
    return await _issue_code(flow, auth, session, user)


def _consent_page(flow: Flow, auth: AuthorizationRequest, user: User) -> Response:
    return pages.render(
        flow.provider,
        flow.request,
        "consent.html",
        action=flow.provider.url("/consent"),
        carried=flow.carried(),
        client_name=flow.client.name,
        email=user.email,
        scopes=[pages.SCOPE_DESCRIPTIONS.get(s, s) for s in sorted(auth.scope)],
    )


async def _issue_code(
    flow: Flow, auth: AuthorizationRequest, session: BrowserSession, user: User
) -> Response:
    settings = flow.provider.settings
    code = await flow.provider.grants.issue_code(
        client_id=auth.client_id,
        user_id=user.id,
        scope=auth.scope,
        resource=auth.resource,
        auth_time=session.auth_time,
        redirect_uri=auth.redirect_uri,
        code_challenge=auth.code_challenge,
        nonce=auth.nonce,
        lifetime=settings.authorization_code_lifetime_seconds,
    )
    logger.info(
        "authorization code issued",
        extra={"client_id": auth.client_id, "user_id": user.id},
    )
    return flow.redirect(code=code)


async def _parameters(request: Request) -> Parameters:
    if request.method == "GET":
        return parameters_of(request.query_params)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise UntrustedAuthorizationRequest(
            "the form must be application/x-www-form-urlencoded"
        )
    form = await request.form()
    params = parameters_of(form)
    return params


async def _flow(provider: Provider, request: Request) -> Flow | Response:
    try:
        params = await _parameters(request)
        client = await _client(provider, params)
        return Flow(provider, request, params, client)
    except UntrustedAuthorizationRequest as exc:
        return pages.error_page(provider, request, exc.description)


def _without_own_fields(params: Parameters) -> Parameters:
    values = {k: v for k, v in params.values.items() if k not in OWN_FIELDS}
    return Parameters(values, params.resource, params.repeated - OWN_FIELDS)


async def authorize(request: Request, provider: ProviderDep) -> Response:
    """Authorization endpoint (OAuth 2.1 section 4.1.1; GET and POST)."""
    flow = await _flow(provider, request)
    if isinstance(flow, Response):
        return flow
    try:
        auth = authorization_request(flow)
    except OAuthError as exc:
        return flow.error(exc)
    return await _continue(
        flow, auth, await _current_session(provider, request), fresh_login=False
    )


async def _form_step(
    provider: Provider, request: Request
) -> tuple[Flow, AuthorizationRequest, Parameters] | Response:
    """The common start of the login and consent steps: CSRF, then the request."""
    flow = await _flow(provider, request)
    if isinstance(flow, Response):
        return flow
    form = flow.params
    if not pages.csrf_is_valid(request, form.get("csrf_token")):
        return pages.error_page(
            provider,
            request,
            "The form expired or was not sent by this site; start again.",
            status_code=403,
        )
    flow.params = _without_own_fields(form)
    try:
        auth = authorization_request(flow)
    except OAuthError as exc:
        return flow.error(exc)
    return flow, auth, form


@router.post("/login")
async def login(request: Request, provider: ProviderDep) -> Response:
    """The login form's target: check the password, start a session, continue."""
    step = await _form_step(provider, request)
    if isinstance(step, Response):
        return step
    flow, auth, form = step
    email = form.get("email") or ""
    address = request.client.host if request.client else None
    try:
        user = await provider.accounts.authenticate_user(
            email, form.get("password") or "", address=address
        )
    except LoginThrottled as exc:
        return _login_page(
            flow,
            auth,
            error=str(exc).capitalize() + ".",
            status_code=429,
            email=email,
            headers={"Retry-After": str(exc.retry_after_seconds)},
        )
    except LoginFailed:
        return _login_page(
            flow,
            auth,
            error="The e-mail address or the password is wrong.",
            status_code=401,
            email=email,
        )

    # A new session on every sign-in: a cookie planted before cannot be
    # promoted to a signed-in one (session fixation).
    cookie, auth_time = await provider.grants.start_session(
        user.id, provider.settings.session_lifetime_seconds
    )
    session = BrowserSession(id="", user_id=user.id, auth_time=auth_time)
    response = await _continue(flow, auth, (session, user), fresh_login=True)
    pages.set_cookie(
        provider,
        response,
        pages.SESSION_COOKIE,
        cookie,
        max_age=provider.settings.session_lifetime_seconds,
    )
    return response


@router.post("/consent")
async def consent(request: Request, provider: ProviderDep) -> Response:
    """The consent form's target: remember the answer and reply to the client."""
    step = await _form_step(provider, request)
    if isinstance(step, Response):
        return step
    flow, auth, form = step
    signed_in = await _current_session(provider, request)
    if signed_in is None:
        return _login_page(flow, auth)
    if form.get("action") != "allow":
        return flow.error(AccessDenied("the user denied the request"))
    session, user = signed_in
    await provider.grants.record_consent(user.id, auth.client_id, auth.scope)
    return await _issue_code(flow, auth, session, user)


async def logout(request: Request, provider: ProviderDep) -> Response:
    """RP-initiated logout 1.0: end the session, return to a registered URI."""
    try:
        params = await _parameters(request)
        params.reject_repeated()
        target = await _post_logout_target(provider, params)
    except (UntrustedAuthorizationRequest, InvalidRequest) as exc:
        return pages.error_page(provider, request, exc.description)

    signed_in = await _current_session(provider, request)
    if signed_in is not None:
        await provider.grants.end_session(signed_in[0].id)
    if target is None:
        response: Response = pages.render(provider, request, "logged_out.html")
    else:
        state = params.get("state")
        query = urlencode({"state": state}) if state is not None else ""
        parts = urlsplit(target)
        joined = "&".join(q for q in (parts.query, query) if q)
        response = RedirectResponse(urlunsplit((*parts[:3], joined, "")), 303)
    response.delete_cookie(
        pages.SESSION_COOKIE,
        path=provider.cookie_path,
        secure=provider.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


async def _post_logout_target(provider: Provider, params: Parameters) -> str | None:
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    if hint is not None:
        try:
            claims = provider.tokens.verify_id_token_hint(hint)
        except InvalidToken as exc:
            raise InvalidRequest(
                "the id_token_hint is not one of our ID tokens"
            ) from exc
        audience = claims.get("aud")
        hinted = audience if isinstance(audience, str) else (audience or [None])[0]
        if client_id is not None and client_id != hinted:
            raise InvalidRequest("client_id differs from the id_token_hint's audience")
        client_id = hinted
    target = params.get("post_logout_redirect_uri")
    if target is None:
        return None
    client = await provider.accounts.find_client(client_id) if client_id else None
    if client is None:
        raise InvalidRequest(
            "post_logout_redirect_uri needs an id_token_hint or client_id"
        )
    if target not in client.post_logout_redirect_uris:
        raise UntrustedAuthorizationRequest(
            f"the post_logout_redirect_uri {target!r} is not registered"
        )
    return target


# One operation per method, so that the OpenAPI document has unique ids.
for _path, _endpoint in (("/authorize", authorize), ("/logout", logout)):
    for _method in ("GET", "POST"):
        router.add_api_route(
            _path,
            _endpoint,
            methods=[_method],
            operation_id=f"{_endpoint.__name__}_{_method.lower()}",
        )
