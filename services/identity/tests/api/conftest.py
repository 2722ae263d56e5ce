"""An identity application in process, its clients, a user, and OAuth steps.

The app runs with its real lifespan against the test database (SQLite and
PostgreSQL through ``database_url``); requests go through httpx's ASGI
transport, cookies and all. The helpers below speak the protocol the way a
client does; they parse forms, not internals.
"""

import base64
import hashlib
import html
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from identity.app import create_app
from identity.domain.users import User, UserProfile
from identity.provider import Provider
from identity.settings import Settings
from identity.storage.database import MIGRATIONS
from servicekit.database import upgrade_database_async

ISSUER = "http://identity.test"
PASSWORD = "correct horse battery staple"
SECRETS = {
    "service": "service-secret-" + "s" * 40,
    "rp": "rp-secret-" + "r" * 40,
    "other-rp": "other-secret-" + "o" * 40,
}
CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "service",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scope": "orders:read orders:write users:read",
    },
    {
        "client_id": "web",
        "client_type": "public",
        "redirect_uris": ["https://web.test/callback", "http://127.0.0.1/callback"],
        "post_logout_redirect_uris": ["https://web.test/bye"],
        "scope": "openid profile email offline_access orders:read",
    },
    {
        "client_id": "rp",
        "client_type": "confidential",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://rp.test/cb"],
        "scope": "openid profile email orders:read orders:write",
        "skip_consent": True,
    },
    {
        "client_id": "other-rp",
        "client_type": "confidential",
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_post",
        "redirect_uris": ["https://other.test/cb"],
        "scope": "openid orders:read",
        "skip_consent": True,
    },
]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(client_id: str) -> dict[str, str]:
    raw = f"{client_id}:{SECRETS[client_id]}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def form_fields(page: str) -> dict[str, str]:
    """The named inputs of the (first) form of an HTML page."""
    fields = {}
    for match in re.finditer(r"<input[^>]*>", page):
        tag = match.group(0)
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[html.unescape(name.group(1))] = (
                html.unescape(value.group(1)) if value else ""
            )
    return fields


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Identity:
    """The running app, a user, and the protocol steps tests compose."""

    http: httpx.AsyncClient
    provider: Provider
    user: User
    settings: Settings
    pkce: dict[str, str] = field(default_factory=dict)

    async def authorize(
        self, client_id: str = "web", method: str = "GET", **params: str | None
    ) -> httpx.Response:
        verifier, challenge = pkce_pair()
        query: dict[str, str | None] = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": _redirect_uri(client_id),
            "scope": "openid profile email",
            "state": "state-" + secrets.token_hex(4),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        query.update(params)
        sent = {k: v for k, v in query.items() if v is not None}
        if sent.get("code_challenge") == challenge:
            self.pkce[challenge] = verifier
        if method == "POST":
            return await self.http.post("/authorize", data=sent)
        return await self.http.get("/authorize", params=sent)

    async def login(
        self, page: httpx.Response, email: str | None = None, password: str = PASSWORD
    ) -> httpx.Response:
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        assert "password" in fields, page.text
        fields.update(email=email or self.user.email, password=password)
        return await self.http.post("/login", data=fields)

    async def consent(
        self, page: httpx.Response, action: str = "allow"
    ) -> httpx.Response:
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        assert True
        fields["action"] = action
        return await self.http.post("/consent", data=fields)

    async def sign_in(
        self, client_id: str = "web", **params: str | None
    ) -> dict[str, str]:
        """Authorize, log in and consent as needed; the redirect's parameters."""
        response = await self.authorize(client_id, "GET", **params)
        if response.status_code == 200 and 'name="password"' in response.text:
            response = await self.login(response)
        if response.status_code == 200 and 'name="action"' in response.text:
            response = await self.consent(response)
        return redirect_params(response)

    def verifier_for(self, params: Mapping[str, str | None]) -> str:
        return self.pkce[str(params["code_challenge"])]

    async def exchange(
        self, client_id: str, code: str, verifier: str, **extra: str
    ) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": _redirect_uri(client_id),
            "code_verifier": verifier,
            **extra,
        }
        return await self.token(client_id, data)

    async def token(self, client_id: str, data: dict[str, str]) -> httpx.Response:
        if client_id in SECRETS:
            return await self.http.post("/token", data=data, headers=basic(client_id))
        return await self.http.post("/token", data={"client_id": client_id, **data})

    async def code_flow(
        self, client_id: str = "web", **params: str | None
    ) -> dict[str, Any]:
        """A whole code flow; the token response's JSON."""
        verifier, challenge = pkce_pair()
        redirected = await self.sign_in(client_id, code_challenge=challenge, **params)
        response = await self.exchange(client_id, redirected["code"], verifier)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _redirect_uri(client_id: str) -> str:
    return {
        "web": "https://web.test/callback",
        "rp": "https://rp.test/cb",
        "other-rp": "https://other.test/cb",
    }.get(client_id, "https://unknown.test/cb")


def identity_settings(database_url: str, folder: Path, **overrides: Any) -> Settings:
    clients_file = folder / "clients.yaml"
    clients_file.write_text(yaml.safe_dump({"clients": CLIENTS}))
    secrets_file = folder / "client-secrets.yaml"
    secrets_file.write_text(yaml.safe_dump(SECRETS))
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "database_url": database_url,
        "key_encryption_key": base64.b64encode(b"t" * 32).decode(),
        "clients_file": clients_file,
        "client_secrets_file": secrets_file,
        # Cheap Argon2 parameters: the tests are about the protocol.
        "password_time_cost": 1,
        "password_memory_kib": 64,
        "password_parallelism": 1,
        "port": 8000,
        "cors_origins": ["https://app.test"],
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def identity(
    database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]
) -> AsyncIterator[Identity]:
    await upgrade_database_async(MIGRATIONS, database_url)
    settings = identity_settings(database_url, tmp_path, **settings_overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        provider: Provider = app.state.provider
        user = await provider.accounts.create_user(
            UserProfile(
                email="Ada@Example.com",
                email_verified=True,
                name="Ada Lovelace",
                given_name="Ada",
                family_name="Lovelace",
            ),
            PASSWORD,
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield Identity(http, provider, user, settings)
