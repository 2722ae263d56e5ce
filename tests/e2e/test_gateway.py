"""The gateway in front of the real platform: a protected route to orders."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Platform, start_platform
from tests.support.tokens import JwksServer, SigningKey, access_token_claims

pytestmark = pytest.mark.e2e

ORIGIN = "http://localhost:3000"


@pytest.fixture
def guarded(tmp_path: Path, jwks_server: JwksServer) -> Iterator[Platform]:
    """The platform with /secure -> orders behind a token for audience orders."""
    running = start_platform(
        tmp_path,
        extra_routes=[
            {
                "prefix": "/secure",
                "upstream": "orders",
                "auth": {
                    "required": True,
                    "audience": "orders",
                    "scopes": ["orders:read"],
                },
            }
        ],
        env={
            "GATEWAY_JWKS_URL": jwks_server.url,
            "GATEWAY_CORS_ORIGINS": f'["{ORIGIN}"]',
        },
    )
    try:
        yield running
    finally:
        for service in reversed(running.services()):
            service.stop()


def test_a_protected_route_reaches_orders_only_with_a_token(
    guarded, rsa_key: SigningKey
):
    issuer = f"{guarded.public_url}/auth"
    token = rsa_key.sign(access_token_claims(iss=issuer))
    url = f"{guarded.public_url}/secure/nothing"

    refused = httpx.get(url, headers={"Origin": ORIGIN})
    admitted = httpx.get(
        url, headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    )

    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="gateway"'
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    # orders answered (its own 404 names the path it saw), with the request id
    # the gateway stamped, and the gateway's CORS headers.
    assert admitted.status_code == 404
    assert admitted.json()["instance"] == "/secure/nothing"
    assert admitted.json()["request_id"] == admitted.headers["x-request-id"]
    assert admitted.headers["access-control-allow-origin"] == ORIGIN


def test_public_routes_stay_public(guarded):
    assert httpx.get(f"{guarded.public_url}/auth/healthz").status_code == 200
