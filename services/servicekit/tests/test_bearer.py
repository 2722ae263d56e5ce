"""BearerAuthentication: RFC 6750 answers for every way a token can be wrong."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from servicekit.application import service_app
from servicekit.bearer import BearerAuthentication, header_safe
from servicekit.tokens import AccessToken, TokenVerifier
from tests.support.tokens import ISSUER, access_token_claims


@pytest.fixture
async def bearer_client(jwks_server) -> AsyncIterator[httpx.AsyncClient]:
    verifier = TokenVerifier(
        jwks_url=jwks_server.url, issuer=ISSUER, audience="orders", cache_size=4
    )
    bearer = BearerAuthentication(verifier, realm="test")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await verifier.start()
        yield
        await verifier.close()

    app = service_app(
        title="t", version="0", description="t", lifespan=lifespan, readiness={}
    )

    @app.get("/me")
    async def me(token: Annotated[AccessToken, Depends(bearer)]) -> dict[str, str]:
        bearer.require(token, ["orders:read", "orders:admin"])
        return {"sub": str(token.subject)}

    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_a_valid_token_reaches_the_route(bearer_client, rsa_key):
    token = rsa_key.sign(access_token_claims())

    response = await bearer_client.get(
        "/me", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.json() == {"sub": "user-1"}


async def test_the_answers_follow_rfc_6750(bearer_client, rsa_key):
    good = rsa_key.sign(access_token_claims())
    expired = rsa_key.sign(access_token_claims(exp=int(time.time()) - 120))
    unscoped = rsa_key.sign(access_token_claims(scope="openid"))

    answers = {
        "none": await bearer_client.get("/me"),
        "query": await bearer_client.get("/me", params={"access_token": good}),
        "malformed": await bearer_client.get(
            "/me", headers={"Authorization": "Bearer"}
        ),
        "expired": await bearer_client.get(
            "/me", headers={"Authorization": f"Bearer {expired}"}
        ),
        "scope": await bearer_client.get(
            "/me", headers={"Authorization": f"Bearer {unscoped}"}
        ),
    }

    assert {name: r.status_code for name, r in answers.items()} == {
        "none": 401,
        "query": 400,
        "malformed": 400,
        "expired": 401,
        "scope": 403,
    }
    assert answers["none"].headers["www-authenticate"] == 'Bearer realm="test"'
    assert answers["query"].json()["error"] == "invalid_request"
    assert answers["expired"].headers["www-authenticate"] == (
        'Bearer realm="test", error="invalid_token", '
        'error_description="the token has expired"'
    )
    assert answers["scope"].json()["scope"] == "orders:read"
    for response in answers.values():
        assert response.headers["content-type"] == "application/problem+json"


def test_header_safe_keeps_printable_ascii_only():
    assert header_safe("kid 'a\r\nb\u00e9'") == "kid 'a??b?'"
