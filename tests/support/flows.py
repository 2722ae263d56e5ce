"""The platform's real flows, driven through the gateway with plain HTTP.

A test that needs traffic with every secret a deployment sees (a user's
password, a code and its ``code_verifier``, access, refresh and ID tokens, a
client secret) or the domain metrics to move calls these. Each returns what it
sent and received, so that the caller can look for those values elsewhere
(logs, spans) or read the series they moved.

The protocol steps reuse the identity engineers' helpers
(``services/identity/tests/api/conftest.py``): PKCE pairs, form parsing and
redirect parameters.
"""

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx

from services.identity.tests.api.conftest import (
    form_fields,
    pkce_pair,
    redirect_params,
)
from tests.support.processes import Platform, running_platform, service_token

RP_CLIENT_ID = "flows-rp"
RP_CLIENT_SECRET = "flows-rp-secret-" + secrets.token_urlsafe(32)
RP_REDIRECT_URI = "https://rp.flows.test/cb"
RP_SCOPE = "openid email offline_access orders:read orders:write"
RP_CLIENT: dict[str, Any] = {
    "client_id": RP_CLIENT_ID,
    "client_type": "confidential",
    "grant_types": ["authorization_code", "refresh_token"],
    "redirect_uris": [RP_REDIRECT_URI],
    "scope": RP_SCOPE,
    "client_secret": RP_CLIENT_SECRET,
}
# Cheap Argon2 parameters: the flows are about traffic, not password hashing.
FAST_PASSWORD_HASHING = {
    "IDENTITY_PASSWORD_TIME_COST": "1",
    "IDENTITY_PASSWORD_MEMORY_KIB": "1024",
    "IDENTITY_PASSWORD_PARALLELISM": "1",
}
TIMEOUT = 30.0


@dataclass
class CodeFlow:
    """What one authorization-code flow sent and received."""

    email: str
    password: str = field(repr=False)
    code: str = field(repr=False)
    code_verifier: str = field(repr=False)
    tokens: dict[str, Any] = field(repr=False)
    refreshed: dict[str, Any] = field(repr=False)

    def secrets(self) -> set[str]:
        return {
            self.password,
            self.code,
            self.code_verifier,
            self.tokens["access_token"],
            self.tokens["refresh_token"],
            self.tokens["id_token"],
            self.refreshed["access_token"],
            self.refreshed["refresh_token"],
            RP_CLIENT_SECRET,
        }


def create_user(platform: Platform) -> tuple[str, str]:
    """A new user with a random password, made through the admin API."""
    token = service_token(platform, "users:write", resource="identity")
    email = f"flow-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(24)
    created = httpx.post(
        f"{platform.public_url}/auth/admin/users",
        json={"email": email, "password": password, "email_verified": True},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    return email, password


def sign_in(
    browser: httpx.Client, email: str, password: str, challenge: str
) -> dict[str, str]:
    """GET /authorize, log in, consent if asked; the redirect's parameters."""
    query = {
        "response_type": "code",
        "client_id": RP_CLIENT_ID,
        "redirect_uri": RP_REDIRECT_URI,
        "scope": RP_SCOPE,
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = browser.get(f"/auth/authorize?{urlencode(query)}")
    # Login page, maybe a consent page, then the redirect to the client.
    for _ in range(4):
        location = response.headers.get("location", "")
        if response.is_redirect and location.startswith(RP_REDIRECT_URI):
            params = redirect_params(response)
            assert params["state"] == query["state"], params
            return params
        if response.is_redirect:
            response = browser.get(urljoin(str(response.url), location))
            continue
        assert response.status_code == 200, response.text
        fields = form_fields(response.text)
        if "password" in fields:
            fields.update(email=email, password=password)
            response = browser.post("/auth/login", data=fields)
        else:
            assert "action" in response.text, response.text
            fields["action"] = "allow"
            response = browser.post("/auth/consent", data=fields)
    raise AssertionError(f"no redirect to the client: {response.text}")


def code_flow(platform: Platform) -> CodeFlow:
    """A user signs in; the client exchanges, refreshes, reads userinfo, revokes."""
    email, password = create_user(platform)
    code_verifier, challenge = pkce_pair()
    auth = (RP_CLIENT_ID, RP_CLIENT_SECRET)
    with httpx.Client(base_url=platform.public_url, timeout=TIMEOUT) as browser:
        code = sign_in(browser, email, password, challenge)["code"]
    with httpx.Client(base_url=platform.public_url, timeout=TIMEOUT) as client:
        exchanged = client.post(
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": RP_REDIRECT_URI,
                "code_verifier": code_verifier,
            },
            auth=auth,
        )
        assert exchanged.status_code == 200, exchanged.text
        tokens: dict[str, Any] = exchanged.json()
        refreshed_response = client.post(
            "/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
            },
            auth=auth,
        )
        assert refreshed_response.status_code == 200, refreshed_response.text
        refreshed: dict[str, Any] = refreshed_response.json()
        userinfo = client.get(
            "/auth/userinfo",
            headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        )
        assert userinfo.status_code == 200, userinfo.text
        assert userinfo.json()["email"] == email
        revoked = client.post(
            "/auth/revoke",
            data={"token": refreshed["refresh_token"]},
            auth=auth,
        )
        assert revoked.status_code == 200, revoked.text
    return CodeFlow(email, password, code, code_verifier, tokens, refreshed)


def orders_flow(platform: Platform, token: str, prefix: str = "/orders") -> str:
    """Create (idempotently), list, get, patch and cancel an order; its id.

    ``prefix`` is where the gateway serves orders' ``/orders``.
    """
    bearer = {"Authorization": f"Bearer {token}"}
    body = {
        "currency": "EUR",
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 1250}],
    }
    with httpx.Client(base_url=platform.public_url, timeout=TIMEOUT) as client:
        key = {"Idempotency-Key": secrets.token_hex(8)}
        created = client.post(prefix, json=body, headers={**bearer, **key})
        assert created.status_code == 201, created.text
        order_id: str = created.json()["id"]
        replayed = client.post(prefix, json=body, headers={**bearer, **key})
        assert replayed.json()["id"] == order_id, replayed.text
        listed = client.get(prefix, headers=bearer)
        assert listed.status_code == 200, listed.text
        assert order_id in {item["id"] for item in listed.json()["items"]}
        found = client.get(f"{prefix}/{order_id}", headers=bearer)
        assert found.status_code == 200, found.text
        patched = client.patch(
            f"{prefix}/{order_id}",
            json={"status": "confirmed"},
            headers={**bearer, "If-Match": found.headers["etag"]},
        )
        assert patched.status_code == 200, patched.text
        cancelled = client.post(
            f"{prefix}/{order_id}/cancel",
            headers={**bearer, "If-Match": patched.headers["etag"]},
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
    return order_id


# A route that makes the gateway verify tokens and spend rate-limit tokens
# (the platform's default test routes do neither): /shop/orders is orders'
# /orders behind authentication and the policy ``default``.
GUARDED_PREFIX = "/shop"
GUARDED_ORDERS = f"{GUARDED_PREFIX}/orders"
GUARDED_ROUTE: dict[str, Any] = {
    "prefix": GUARDED_PREFIX,
    "upstream": "orders",
    "strip_prefix": True,
    "auth": {"required": True, "audience": "orders"},
    "rate_limit": "default",
}
RATE_LIMITS = {"default": {"capacity": 1000, "refill_per_second": 100}}


@contextmanager
def flows_platform(
    folder: Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_upstreams: Mapping[str, str | Mapping[str, Any]] | None = None,
    extra_routes: list[dict[str, Any]] | None = None,
    rate_limits: Mapping[str, Mapping[str, float]] | None = None,
) -> Iterator[Platform]:
    """A running platform that the flows above can drive, stopped on exit."""
    with running_platform(
        folder,
        env={**FAST_PASSWORD_HASHING, **(env or {})},
        extra_upstreams=extra_upstreams,
        extra_routes=[GUARDED_ROUTE, *(extra_routes or [])],
        identity_clients=[RP_CLIENT],
        rate_limits={**RATE_LIMITS, **(rate_limits or {})},
    ) as running:
        yield running


def client_credentials_token(platform: Platform, scope: str) -> str:
    """The test client's token, asked for at the gateway as a client would."""
    response = httpx.post(
        f"{platform.public_url}/auth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(platform.client_id, platform.client_secret),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
