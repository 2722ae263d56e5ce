"""identity as a real process: a client-credentials token that orders' verifier accepts."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
    AsyncOAuth2Client,
)

from servicekit.tokens import TokenVerifier
from tests.support.processes import TEST_CLIENT_ID, service_token, start_platform

pytestmark = pytest.mark.e2e


async def test_a_client_credentials_token_verifies_against_the_published_jwks(platform):
    token = service_token(platform, "orders:read orders:write")
    verifier = TokenVerifier(
        jwks_url=f"{platform.identity.base_url}/.well-known/jwks.json",
        issuer=f"{platform.public_url}/auth",
        audience="orders",
    )
    try:
        await verifier.start()
        verified = await verifier.verify(token)
    finally:
        await verifier.close()

    assert verified.client_id == verified.subject == TEST_CLIENT_ID
    assert verified.scopes == {"orders:read", "orders:write"}
    assert verified.audience == ("orders",)


def test_discovery_through_the_gateway_names_the_public_issuer(platform):
    response = httpx.get(f"{platform.public_url}/auth/.well-known/openid-configuration")

    assert response.status_code == 200
    assert response.json()["issuer"] == f"{platform.public_url}/auth"
    assert response.json()["token_endpoint"] == f"{platform.public_url}/auth/token"


def test_no_secret_reaches_identity_logs(platform):
    token = service_token(platform)

    log = platform.identity.log_path.read_text()
    assert token not in log
    assert platform.client_secret not in log
    assert platform.identity.env["IDENTITY_KEY_ENCRYPTION_KEY"] not in log


RP_SECRET = "e2e-rp-secret-" + "e" * 40
RP_CLIENT = {
    "client_id": "e2e-rp",
    "client_type": "confidential",
    "grant_types": ["authorization_code", "refresh_token"],
    "redirect_uris": ["https://rp.e2e.test/cb"],
    "scope": "openid email orders:read",
    "skip_consent": True,
    "client_secret": RP_SECRET,
}


async def test_a_code_flow_through_the_gateway_with_authlib(tmp_path):
    running = start_platform(
        tmp_path, identity_clients=[RP_CLIENT], env={"IDENTITY_SEED_DEMO": "true"}
    )
    try:
        issuer = f"{running.public_url}/auth"
        async with httpx.AsyncClient() as http:
            discovered = await http.get(f"{issuer}/.well-known/openid-configuration")
        metadata = discovered.json()
        client = AsyncOAuth2Client(
            client_id="e2e-rp",
            client_secret=RP_SECRET,
            redirect_uri="https://rp.e2e.test/cb",
            scope="openid email orders:read",
            code_challenge_method="S256",
        )
        verifier = generate_token(64)
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier
        )
        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
            fields = {
                unescape(n): unescape(v)
                for n, v in re.findall(
                    r'<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"', page.text
                )
            }
            fields.update(email="demo@example.com", password="demo-password")
            action = re.search(r'action="([^"]*)"', page.text)
            assert action is not None, page.text
            signed_in = await browser.post(unescape(action.group(1)), data=fields)
        location = signed_in.headers["location"]
        returned = parse_qs(urlsplit(location).query)
        async with client:
            token = await client.fetch_token(
                metadata["token_endpoint"],
                authorization_response=location,
                state=state,
                code_verifier=verifier,
            )
        verifier_for_orders = TokenVerifier(
            jwks_url=f"{running.identity.base_url}/.well-known/jwks.json",
            issuer=issuer,
            audience="orders",
        )
        try:
            await verifier_for_orders.start()
            verified = await verifier_for_orders.verify(token["access_token"])
        finally:
            await verifier_for_orders.close()
    finally:
        for service in reversed(running.services()):
            service.stop()

    logs = "".join(service.log_path.read_text() for service in running.services())
    for secret in (
        returned["code"][0],
        token["access_token"],
        token["refresh_token"],
        token["id_token"],
        RP_SECRET,
    ):
        assert secret not in logs
    assert unescape(action.group(1)) == f"{issuer}/login"
    assert returned["iss"] == [issuer]
    assert verified.client_id == "e2e-rp"
    assert verified.scopes == {"openid", "email", "orders:read"}
    assert "id_token" in token
