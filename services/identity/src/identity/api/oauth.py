"""The token endpoint and the endpoints that take tokens back: OAuth 2.1 section 3.2,
RFC 7009 (revocation), RFC 7662 (introspection), OpenID Connect Core 5.3 (userinfo)."""

import logging
import time
from typing import Any, cast

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from identity import metrics
from identity.api.client_authentication import authenticate_client
from identity.api.errors import NO_STORE
from identity.api.parameters import Parameters, form_parameters
from identity.domain.clients import Client
from identity.domain.grants import (
    audiences,
    narrowed_scope,
    requested_scope,
    verify_code_verifier,
)
from identity.domain.users import User
from identity.errors import (
    InsufficientScope,
    InvalidAccessToken,
    InvalidClientAuthentication,
    InvalidGrant,
    InvalidRequest,
    InvalidTarget,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from identity.provider import Provider, ProviderDep
from identity.storage.grants import Grant
from servicekit.application import RequestRoute
from servicekit.tokens import InvalidToken, MalformedAuthorization, bearer_token

logger = logging.getLogger(__name__)

router = APIRouter(tags=["oauth"])


def _token_response(body: dict[str, Any]) -> Response:
    # The bytes JSONResponse would send (compact, UTF-8), without its encoder.
    return Response(orjson.dumps(body), media_type="application/json", headers=NO_STORE)


async def token(request: Request) -> Response:
    """Token endpoint: authorization_code, refresh_token and client_credentials."""
    # The provider is taken from the app, not through ProviderDep: the token
    # endpoint is the hot path, and FastAPI's solving of a sub-dependency was
    # a sixth of what a client-credentials request cost besides the signature.
    provider = cast(Provider, request.app.state.provider)
    params = await form_parameters(request)
    params.reject_repeated()
    client = await authenticate_client(provider, request, params)
    grant_type = params.require("grant_type")
    if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"the client may not use the {grant_type} grant")

    if grant_type == "client_credentials":
        body = _client_credentials(provider, client, params)
    elif grant_type == "authorization_code":
        body = await _authorization_code(provider, client, params)
    else:
        body = await _refresh_token(provider, client, params)
    metrics.tokens_issued.labels(grant_type=grant_type).inc()
    return _token_response(body)


# The hot path, served without FastAPI's parameter solving: it reads its form
# itself (see servicekit.application.RequestRoute).
router.add_api_route(
    "/token", token, methods=["POST"], route_class_override=RequestRoute
)


def _client_credentials(
    provider: Provider, client: Client, params: Parameters
) -> dict[str, Any]:
    # OAuth 2.1 section 4.2: only for clients that can keep a secret.
    if not client.is_confidential:
        raise UnauthorizedClient("client_credentials is for confidential clients only")
    scope = requested_scope(client, params.get("scope")) - {
        "openid",
        "offline_access",
    }
    aud = audiences(client, scope, params.resource, provider.issuer)
    issued = provider.tokens.access_token(
        subject=client.client_id, client_id=client.client_id, audience=aud, scope=scope
    )
    return {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": " ".join(sorted(scope)),
    }


async def _authorization_code(
    provider: Provider, client: Client, params: Parameters
) -> dict[str, Any]:
    code = params.require("code")
    verifier = params.get("code_verifier")
    if verifier is None:
        raise InvalidRequest("code_verifier is required (PKCE)")
    redeemed = await provider.grants.redeem_code(code, client.client_id)
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is not None and redirect_uri != redeemed.redirect_uri:
        raise InvalidGrant("redirect_uri differs from the authorization request's")
    if redirect_uri is None and len(client.redirect_uris) != 1:
        raise InvalidRequest("redirect_uri is required")
    if not verify_code_verifier(verifier, redeemed.code_challenge):
        raise InvalidGrant("the code_verifier does not match the code_challenge")
    return await _issue_for_grant(
        provider, client, redeemed.grant, redeemed.grant.scope, redeemed.nonce, True
    )


async def _refresh_token(
    provider: Provider, client: Client, params: Parameters
) -> dict[str, Any]:
    refresh_token = params.require("refresh_token")
    if params.get("scope") is not None:
        # A request asking for too much must not use the token up.
        carried = await provider.grants.refresh_token_scope(refresh_token)
        if carried is not None:
            narrowed_scope(carried, params.get("scope"))
    redeemed = await provider.grants.redeem_refresh_token(
        refresh_token, client.client_id
    )
    scope = narrowed_scope(redeemed.scope, params.get("scope"))
    if params.resource and not set(params.resource) <= set(redeemed.grant.resource):
        raise InvalidTarget("a refresh may only narrow the resource of the grant")
    grant = redeemed.grant
    if params.resource:
        grant = Grant(
            grant.id,
            grant.client_id,
            grant.user_id,
            grant.scope,
            tuple(params.resource),
            grant.auth_time,
        )
    # The new refresh token keeps the whole grant, so a narrow request now does
    # not shrink what a later refresh may ask for (RFC 6749 section 6).
    return await _issue_for_grant(
        provider, client, grant, scope, None, False, redeemed.scope
    )


async def _issue_for_grant(
    provider: Provider,
    client: Client,
    grant: Grant,
    scope: frozenset[str],
    nonce: str | None,
    first: bool,
    refresh_scope: frozenset[str] | None = None,
) -> dict[str, Any]:
    user = await provider.accounts.find_user(grant.user_id)
    if user is None or user.disabled:
        raise InvalidGrant("the user of this grant cannot sign in")
    api_scope = scope - {"openid", "offline_access"}
    aud = grant.resource or audiences(client, api_scope, [], provider.issuer)
    issued = provider.tokens.access_token(
        subject=user.id,
        client_id=client.client_id,
        audience=aud,
        scope=scope,
        auth_time=grant.auth_time,
    )
    await provider.grants.record_access_token(issued.jti, grant.id, issued.expires_at)
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": " ".join(sorted(scope)),
    }
    if "refresh_token" in client.grant_types:
        body["refresh_token"] = await provider.grants.issue_refresh_token(
            grant,
            refresh_scope or grant.scope,
            provider.settings.refresh_token_lifetime_seconds,
        )
    if "openid" in scope:
        body["id_token"] = provider.tokens.id_token(
            subject=user.id,
            client_id=client.client_id,
            auth_time=grant.auth_time,
            nonce=nonce if first else None,
            access_token=issued,
        )
    return body


def user_claims(user: User, scope: frozenset[str]) -> dict[str, Any]:
    """Claims by scope (OpenID Connect Core section 5.4)."""
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scope:
        for name in ("name", "given_name", "family_name"):
            value = getattr(user, name)
            if value is not None:
                claims[name] = value
        claims["updated_at"] = int(user.updated_at.timestamp())
    if "email" in scope:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


async def _userinfo_token(request: Request) -> str:
    try:
        header_token = bearer_token(request.headers.get("authorization"))
    except MalformedAuthorization as exc:
        raise InvalidRequest(exc.description) from exc
    body_token = None
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(
        "application/x-www-form-urlencoded"
    ):
        # RFC 6750 section 2.2: the form-encoded body parameter.
        body_token = (await request.form()).get("access_token")
    if header_token and body_token:
        raise InvalidRequest("send the access token once, not in two places")
    found = header_token or body_token
    if not isinstance(found, str) or not found:
        raise InvalidAccessToken("an access token is required")
    return found


async def userinfo(request: Request, provider: ProviderDep) -> Response:
    """The signed-in user's claims, by the scopes of the access token."""
    access_token = await _userinfo_token(request)
    try:
        claims = provider.tokens.verify_access_token(access_token)
    except InvalidToken as exc:
        raise InvalidAccessToken(exc.description) from exc
    if await provider.grants.access_token_revoked(str(claims.get("jti"))):
        raise InvalidAccessToken("the access token has been revoked")
    scope = frozenset(str(claims.get("scope", "")).split())
    if "openid" not in scope:
        raise InsufficientScope("the access token lacks the openid scope")
    user = await provider.accounts.find_user(str(claims.get("sub")))
    if user is None or user.disabled:
        raise InvalidAccessToken("the access token's user no longer exists")
    return JSONResponse(user_claims(user, scope), headers=NO_STORE)


@router.post("/revoke")
async def revoke(request: Request, provider: ProviderDep) -> Response:
    """RFC 7009: revoke a refresh token (and its grant) or an access token."""
    params = await form_parameters(request)
    params.reject_repeated()
    client = await authenticate_client(provider, request, params)
    token = params.require("token")
    hint = params.get("token_type_hint")
    if hint != "access_token" and await provider.grants.revoke_refresh_token(
        token, client.client_id
    ):
        return Response(status_code=200, headers=NO_STORE)
    try:
        claims = provider.tokens.verify_access_token(token)
    except InvalidToken:
        # Section 2.2: an invalid token is not an error; there is nothing to do.
        return Response(status_code=200, headers=NO_STORE)
    if claims.get("client_id") == client.client_id:
        await provider.grants.revoke_access_token(
            str(claims["jti"]), float(claims["exp"])
        )
    return Response(status_code=200, headers=NO_STORE)


@router.post("/introspect")
async def introspect(request: Request, provider: ProviderDep) -> Response:
    """RFC 7662: whether a token is active, for confidential clients."""
    params = await form_parameters(request)
    params.reject_repeated()
    client = await authenticate_client(provider, request, params)
    if not client.is_confidential:
        raise InvalidClientAuthentication("introspection is for confidential clients")
    token = params.require("token")
    inactive = JSONResponse({"active": False}, headers=NO_STORE)
    try:
        claims = provider.tokens.verify_access_token(token)
    except InvalidToken:
        refresh = await provider.grants.inspect_refresh_token(token)
        if refresh is None:
            return inactive
        return JSONResponse({"active": True, **refresh}, headers=NO_STORE)
    if claims["exp"] < time.time() or await provider.grants.access_token_revoked(
        str(claims.get("jti"))
    ):
        return inactive
    return JSONResponse(
        {"active": True, "token_type": "Bearer", **claims}, headers=NO_STORE
    )


# One operation per method, so that the OpenAPI document has unique ids.
for _method in ("GET", "POST"):
    router.add_api_route(
        "/userinfo",
        userinfo,
        methods=[_method],
        operation_id=f"userinfo_{_method.lower()}",
    )
