"""OpenID Connect Discovery 1.0 / RFC 8414 metadata and the JWK Set."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from identity.domain.grants import OIDC_SCOPES
from identity.provider import Provider, ProviderDep

router = APIRouter(tags=["discovery"])

API_SCOPES = (
    "orders:read",
    "orders:write",
    "orders:admin",
    "users:read",
    "users:write",
)


def metadata(provider: Provider) -> dict[str, Any]:
    """Every endpoint absolute under the configured issuer, never the request's host."""
    url = provider.url
    return {
        "issuer": provider.issuer,
        "authorization_endpoint": url("/authorize"),
        "token_endpoint": url("/token"),
        "userinfo_endpoint": url("/userinfo"),
        "jwks_uri": url("/.well-known/jwks.json"),
        "revocation_endpoint": url("/revoke"),
        "introspection_endpoint": url("/introspect"),
        "end_session_endpoint": url("/logout"),
        "scopes_supported": sorted(OIDC_SCOPES) + list(API_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [provider.settings.signing_algorithm],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "name",
            "given_name",
            "family_name",
            "email",
            "email_verified",
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        # RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }


@router.get("/.well-known/openid-configuration")
async def openid_configuration(provider: ProviderDep) -> JSONResponse:
    """OpenID Provider metadata (OpenID Connect Discovery 1.0 section 3)."""
    return JSONResponse(
        metadata(provider), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/.well-known/oauth-authorization-server")
async def oauth_authorization_server(provider: ProviderDep) -> JSONResponse:
    """Authorization server metadata (RFC 8414 section 3)."""
    return JSONResponse(
        metadata(provider), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/.well-known/jwks.json")
async def jwks(provider: ProviderDep) -> JSONResponse:
    """The public signing keys; cached no longer than new keys are published ahead."""
    return JSONResponse(
        provider.keys.jwks(),
        media_type="application/jwk-set+json",
        headers={
            "Cache-Control": f"public, max-age={provider.settings.jwks_max_age_seconds}"
        },
    )
