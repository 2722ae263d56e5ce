"""identity as a real process: a client-credentials token that orders' verifier accepts."""

import httpx
import pytest

from servicekit.tokens import TokenVerifier
from tests.support.processes import TEST_CLIENT_ID, service_token

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
