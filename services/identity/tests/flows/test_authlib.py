"""The happy paths, driven by Authlib (a real OAuth client) against a real process."""

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.jose import JsonWebKey, jwt  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]

from .conftest import DEMO_EMAIL, DEMO_PASSWORD, SECRETS

pytestmark = pytest.mark.e2e


async def discover(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base_url}/.well-known/openid-configuration")
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    assert metadata["issuer"] == base_url
    return metadata


async def browser_sign_in(authorization_url: str) -> str:
    """What a user agent does: open the page, sign in, allow; the final redirect."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(authorization_url)
        for _ in range(3):
            if response.status_code in (302, 303):
                return response.headers["location"]
            fields = dict(
                (html.unescape(n), html.unescape(v))
                for n, v in re.findall(
                    r'<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"', response.text
                )
            )
            form = re.search(r'<form method="post" action="([^"]*)"', response.text)
            assert form is not None, response.text
            action = html.unescape(form.group(1))
            if 'name="password"' in response.text:
                fields.update(email=DEMO_EMAIL, password=DEMO_PASSWORD)
            else:
                fields["action"] = "allow"
            response = await browser.post(action, data=fields)
    raise AssertionError(
        f"no redirect to the client: {response.status_code} {response.text[:300]}"
    )


async def validated_id_token(metadata, id_token, client_id, nonce, access_token):
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(metadata["jwks_uri"])).json()
    claims = jwt.decode(
        id_token,
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": metadata["issuer"]}},
        claims_params={
            "nonce": nonce,
            "client_id": client_id,
            "access_token": access_token,
        },
    )
    claims.validate(leeway=300)  # checks iss, aud, exp, iat, nonce, azp, at_hash
    return claims


async def test_code_flow_refresh_userinfo_revoke_with_a_confidential_client(
    identity_process,
):
    metadata = await discover(identity_process.base_url)
    client = AsyncOAuth2Client(
        client_id="rp",
        client_secret=SECRETS["rp"],
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri="https://rp.test/cb",
        scope="openid profile email",
        code_challenge_method="S256",
    )
    verifier, nonce = generate_token(64), generate_token(20)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    location = await browser_sign_in(url)
    returned = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert returned["iss"] == metadata["issuer"]

    async with client:
        token = await client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=verifier,
        )
        claims = await validated_id_token(
            metadata, token["id_token"], "rp", nonce, token["access_token"]
        )
        userinfo = (await client.get(metadata["userinfo_endpoint"])).json()
        refreshed = await client.refresh_token(metadata["token_endpoint"])
        revoked = await client.revoke_token(
            metadata["revocation_endpoint"],
            refreshed["refresh_token"],
            token_type_hint="refresh_token",
        )
        after = await client.post(
            metadata["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": refreshed["refresh_token"],
            },
            auth=(client.client_id, SECRETS["rp"]),
        )

    assert claims["sub"] == userinfo["sub"]
    assert userinfo["email"] == DEMO_EMAIL
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert revoked.status_code == 200
    assert after.json()["error"] == "invalid_grant"


async def test_code_flow_of_a_public_client_with_consent(identity_process):
    metadata = await discover(identity_process.base_url)
    client = AsyncOAuth2Client(
        client_id="spa",
        token_endpoint_auth_method="none",
        redirect_uri="https://spa.test/callback",
        scope="openid email offline_access orders:read",
        code_challenge_method="S256",
    )
    verifier, nonce = generate_token(64), generate_token(20)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    location = await browser_sign_in(url)

    async with client:
        token = await client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=verifier,
        )
        claims = await validated_id_token(
            metadata, token["id_token"], "spa", nonce, token["access_token"]
        )
        introspected = await client.post(
            metadata["introspection_endpoint"],
            data={"token": token["access_token"]},
            auth=("rp", SECRETS["rp"]),
        )

    assert claims["aud"] == "spa"
    assert introspected.json()["active"] is True
    assert introspected.json()["aud"] == "orders"


async def test_client_credentials_with_basic_and_post(identity_process):
    metadata = await discover(identity_process.base_url)
    tokens = {}
    for method in ("client_secret_basic", "client_secret_post"):
        async with AsyncOAuth2Client(
            client_id="service",
            client_secret=SECRETS["service"],
            token_endpoint_auth_method=method,
            scope="orders:read",
        ) as client:
            tokens[method] = await client.fetch_token(
                metadata["token_endpoint"], grant_type="client_credentials"
            )

    for token in tokens.values():
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "orders:read"
