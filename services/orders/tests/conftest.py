"""An orders application on a real database, with a real JWKS endpoint.

The app runs in-process behind httpx's ASGI transport, its lifespan entered as
uvicorn would; its database (SQLite or PostgreSQL, from ``database_url``) and
the JWKS it fetches are real servers.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from orders.app import create_app
from orders.settings import Settings
from orders.storage.database import MIGRATIONS
from servicekit.database import upgrade_database_async
from tests.support.tokens import ISSUER, JwksServer, SigningKey, access_token_claims

Mint = Callable[..., str]


def orders_settings(database_url: str, jwks_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "port": 8001,
        "database_url": database_url,
        "issuer": ISSUER,
        "jwks_url": jwks_url,
        "audience": "orders",
        "token_leeway_seconds": 5,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` while its lifespan runs."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://orders.test"
        ) as client:
            yield client


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await upgrade_database_async(MIGRATIONS, database_url)
    return database_url


@pytest.fixture
def settings(migrated_url: str, jwks_server: JwksServer) -> Settings:
    return orders_settings(migrated_url, jwks_server.url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as client:
        yield client


StartOrders = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def start_orders(migrated_url: str) -> StartOrders:
    """Start another orders app on the test's database, with other settings."""

    def start(jwks_url: str, **overrides: Any) -> Any:
        return running(create_app(orders_settings(migrated_url, jwks_url, **overrides)))

    return start


@pytest.fixture
def mint(rsa_key: SigningKey) -> Mint:
    """An access token for ``sub`` with ``scope``, any claim overridable."""

    def mint(
        sub: str = "user-1", scope: str = "orders:read orders:write", **claims: Any
    ) -> str:
        return rsa_key.sign(access_token_claims(sub=sub, scope=scope, **claims))

    return mint


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def an_order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "currency": "EUR",
        "items": [
            {"sku": "BOOK-0451", "quantity": 2, "unit_price_minor": 1250},
            {"sku": "PEN-7", "quantity": 1, "unit_price_minor": 199},
        ],
    }
    body.update(overrides)
    return body


class Shop:
    """A client of the API: tokens, headers, bodies, and orders created."""

    def __init__(self, client: httpx.AsyncClient, mint: Mint) -> None:
        self.client = client
        self.mint = mint
        self._keys = 0

    def headers(
        self, sub: str = "user-1", scope: str = "orders:read orders:write", **more: str
    ) -> dict[str, str]:
        return {**bearer(self.mint(sub, scope)), **more}

    @staticmethod
    def body(**overrides: Any) -> dict[str, Any]:
        return an_order(**overrides)

    async def create(
        self, sub: str = "user-1", scope: str = "orders:read orders:write", **body: Any
    ) -> dict[str, Any]:
        self._keys += 1
        response = await self.client.post(
            "/orders",
            json=an_order(**body),
            headers={
                **bearer(self.mint(sub, scope)),
                "Idempotency-Key": f"key-{sub}-{self._keys}",
            },
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@pytest.fixture
def shop(client: httpx.AsyncClient, mint: Mint) -> Shop:
    return Shop(client, mint)
