"""The admin API through HTTP: tokens, users, clients, and what it never shows."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from identity.accounts import Accounts
from identity.api import admin as admin_api
from servicekit.application import add_routes, service_app
from servicekit.logs import JsonFormatter
from servicekit.tokens import TokenVerifier
from tests.support.tokens import ISSUER, access_token_claims

PASSWORD = "correct horse battery"
BASE = "http://identity.test"


@pytest.fixture
async def admin(sessions, migrated_url, jwks_server, disabled_users, settings_for):
    """An app with the admin API, its tokens verified against a real JWKS."""
    settings = settings_for(migrated_url, issuer="https://id.example.com/auth")

    async def record(user_id: str) -> None:
        disabled_users.append(user_id)

    accounts = Accounts(sessions, settings, on_user_disabled=record)
    verifier = TokenVerifier(
        jwks_url=jwks_server.url, issuer=ISSUER, audience="identity"
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.accounts = accounts
        app.state.access_tokens = verifier
        yield
        await verifier.close()

    app = service_app(
        title="identity", version="0", description="", lifespan=lifespan, readiness={}
    )
    add_routes(app, admin_api.users, admin_api.clients)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


@pytest.fixture
def token(rsa_key):
    def mint(scope="users:read users:write", **claims):
        return rsa_key.sign(
            access_token_claims(
                aud="identity", scope=scope, client_id="admin", **claims
            )
        )

    return mint


@pytest.fixture
def writer(token):
    return {"Authorization": f"Bearer {token()}"}


async def create(admin, writer, email="ada@example.com", **fields):
    response = await admin.post(
        "/admin/users",
        json={"email": email, "password": PASSWORD, **fields},
        headers=writer,
    )
    assert response.status_code == 201, response.text
    return response


async def test_no_token_is_a_401_with_a_bearer_challenge(admin):
    response = await admin.get("/admin/users")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="identity"'
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"aud": "orders"}, "the token is not meant for this API (aud)"),
        ({"exp": 1000}, "the token has expired"),
        ({"iss": "https://evil.example"}, f"the token was not issued by {ISSUER}"),
    ],
    ids=["audience", "expired", "issuer"],
)
async def test_an_unacceptable_token_is_invalid_token(
    admin, rsa_key, claims, description
):
    bad = rsa_key.sign(
        access_token_claims(**{"aud": "identity", "scope": "users:read", **claims})
    )

    response = await admin.get(
        "/admin/users", headers={"Authorization": f"Bearer {bad}"}
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="identity", error="invalid_token", '
        f'error_description="{description}"'
    )
    assert response.json()["error"] == "invalid_token"


async def test_a_token_without_the_scope_is_insufficient_scope(admin, token):
    reader = {"Authorization": f"Bearer {token('users:read')}"}

    response = await admin.post(
        "/admin/users",
        json={"email": "a@example.com", "password": PASSWORD},
        headers=reader,
    )

    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="identity", error="insufficient_scope", '
        "error_description=\"the token does not grant 'users:write'\", "
        'scope="users:write"'
    )
    assert response.json()["error"] == "insufficient_scope"


async def test_a_malformed_authorization_header_is_invalid_request(admin):
    response = await admin.get("/admin/users", headers={"Authorization": "Basic abc"})

    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_creating_a_user_answers_201_with_its_location(admin, writer):
    response = await create(admin, writer, name="Ada Lovelace", email_verified=True)

    user = response.json()
    assert response.headers["location"] == (
        f"https://id.example.com/auth/admin/users/{user['id']}"
    )
    assert user["email"] == "ada@example.com"
    assert user["name"] == "Ada Lovelace"
    assert user["email_verified"] is True
    assert user["disabled"] is False
    assert "password" not in response.text
    read = await admin.get(f"/admin/users/{user['id']}", headers=writer)
    assert read.json() == user


async def test_a_duplicate_email_in_another_case_is_409(admin, writer):
    await create(admin, writer, email="ada@example.com")

    response = await admin.post(
        "/admin/users",
        json={"email": "ADA@example.com", "password": PASSWORD},
        headers=writer,
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "A user with the e-mail address 'ADA@example.com' already exists."
    )


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {"email": "ada", "password": PASSWORD},
            "email",
            "expected an address like name@example.com, got 'ada'",
        ),
        (
            {"email": "ada@example.com", "password": "short"},
            "password",
            "at least 8 characters",
        ),
        ({"email": "ada@example.com"}, "password", "Field required"),
        (
            {"email": "ada@example.com", "password": PASSWORD, "role": "x"},
            "role",
            "Extra inputs are not permitted",
        ),
    ],
    ids=["email", "short-password", "missing-password", "unknown-field"],
)
async def test_an_invalid_user_is_422_naming_the_field(
    admin, writer, body, field, reason
):
    response = await admin.post("/admin/users", json=body, headers=writer)

    assert response.status_code == 422
    problem = response.json()
    assert [(e["field"], e["reason"]) for e in problem["errors"]] == [(field, reason)]
    # A refused request never echoes the password it carried.
    assert body.get("password", "-") not in response.text


async def test_an_unknown_user_is_404(admin, writer):
    response = await admin.get("/admin/users/nope", headers=writer)

    assert response.status_code == 404
    assert response.json()["detail"] == "No user has the id 'nope'."
    patched = await admin.patch("/admin/users/nope", json={"name": "x"}, headers=writer)
    assert patched.status_code == 404
    deleted = await admin.delete("/admin/users/nope", headers=writer)
    assert deleted.status_code == 404
    disabled = await admin.post("/admin/users/nope/disable", headers=writer)
    assert disabled.status_code == 404
    assert disabled.json()["detail"] == "No user has the id 'nope'."


async def test_users_list_in_pages_by_cursor(admin, writer):
    ids = sorted(
        [
            (await create(admin, writer, email=f"u{i}@example.com")).json()["id"]
            for i in range(5)
        ]
    )

    seen, cursor = [], None
    for _ in range(3):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await admin.get("/admin/users", params=params, headers=writer)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]

    assert seen == ids
    assert cursor is None


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "%%%"}, "cursor")],
    ids=["zero", "too-many", "bad-cursor"],
)
async def test_page_size_is_bounded_and_cursors_checked(admin, writer, params, field):
    response = await admin.get("/admin/users", params=params, headers=writer)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_patch_changes_only_the_fields_given(admin, writer):
    user = (await create(admin, writer, name="Ada", given_name="Ada")).json()

    response = await admin.patch(
        f"/admin/users/{user['id']}",
        json={"name": None, "family_name": "Lovelace"},
        headers=writer,
    )

    assert response.status_code == 200
    changed = response.json()
    assert (changed["name"], changed["given_name"], changed["family_name"]) == (
        None,
        "Ada",
        "Lovelace",
    )
    refused = await admin.patch(
        f"/admin/users/{user['id']}", json={"email": None}, headers=writer
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "email"


async def test_disabling_revokes_and_enabling_restores(admin, writer, disabled_users):
    user = (await create(admin, writer)).json()

    disabled = await admin.post(f"/admin/users/{user['id']}/disable", headers=writer)
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    assert disabled_users == [user["id"]]

    enabled = await admin.post(f"/admin/users/{user['id']}/enable", headers=writer)
    assert enabled.json()["disabled"] is False


async def test_deleting_a_user_answers_204_then_404(admin, writer):
    user = (await create(admin, writer)).json()

    assert (
        await admin.delete(f"/admin/users/{user['id']}", headers=writer)
    ).status_code == 204
    assert (
        await admin.get(f"/admin/users/{user['id']}", headers=writer)
    ).status_code == 404


CONFIDENTIAL = {
    "client_id": "reports",
    "client_type": "confidential",
    "scope": "orders:read",
}


async def test_a_confidential_clients_secret_is_shown_once(admin, writer):
    created = await admin.post("/admin/clients", json=CONFIDENTIAL, headers=writer)

    assert created.status_code == 201
    assert (
        created.headers["location"]
        == "https://id.example.com/auth/admin/clients/reports"
    )
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    secret = body["client_secret"]
    assert len(secret) >= 43
    assert body["grant_types"] == ["client_credentials"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["audience"] == ["orders"]

    read = await admin.get("/admin/clients/reports", headers=writer)
    listed = await admin.get("/admin/clients", headers=writer)
    assert secret not in read.text
    assert "client_secret" not in read.json()
    assert secret not in listed.text
    assert [c["client_id"] for c in listed.json()["items"]] == ["reports"]


async def test_a_public_client_has_no_secret(admin, writer):
    created = await admin.post(
        "/admin/clients",
        json={
            "client_id": "spa",
            "client_type": "public",
            "redirect_uris": ["http://localhost:3000/callback"],
            "scope": ["openid", "orders:read"],
        },
        headers=writer,
    )

    assert created.status_code == 201
    assert created.json()["client_secret"] is None
    assert created.json()["grant_types"] == ["authorization_code", "refresh_token"]
    rotated = await admin.post("/admin/clients/spa/secret", headers=writer)
    assert rotated.status_code == 409
    assert rotated.json()["detail"] == "The client 'spa' is public and has no secret."


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {
                "client_id": "spa",
                "client_type": "public",
                "redirect_uris": ["http://spa.example.com/cb"],
            },
            "redirect_uris[0]",
            "http is allowed only for localhost or a loopback address, got 'http://spa.example.com/cb'",
        ),
        (
            {
                "client_id": "spa",
                "client_type": "public",
                "redirect_uris": ["https://spa.example.com/cb#x"],
            },
            "redirect_uris[0]",
            "a redirect URI has no fragment, got 'https://spa.example.com/cb#x'",
        ),
        (
            {"client_id": "spa", "client_type": "public", "redirect_uris": ["cb"]},
            "redirect_uris[0]",
            "expected an absolute URI, got 'cb'",
        ),
        (
            {"client_id": "x", "client_type": "secretive"},
            "client_type",
            "Input should be 'public' or 'confidential'",
        ),
    ],
    ids=["http-not-loopback", "fragment", "relative", "type"],
)
async def test_an_invalid_client_is_422_naming_the_field(
    admin, writer, body, field, reason
):
    response = await admin.post("/admin/clients", json=body, headers=writer)

    assert response.status_code == 422
    assert [(e["field"], e["reason"]) for e in response.json()["errors"]] == [
        (field, reason)
    ]


async def test_a_client_id_taken_is_409(admin, writer):
    await admin.post("/admin/clients", json=CONFIDENTIAL, headers=writer)

    response = await admin.post("/admin/clients", json=CONFIDENTIAL, headers=writer)

    assert response.status_code == 409
    assert (
        response.json()["detail"]
        == "A client with the client_id 'reports' already exists."
    )


async def test_rotating_a_secret_retires_the_old_one(admin, writer):
    old = (
        await admin.post("/admin/clients", json=CONFIDENTIAL, headers=writer)
    ).json()["client_secret"]

    rotated = await admin.post("/admin/clients/reports/secret", headers=writer)

    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["client_secret"]
    assert new != old
    accounts = admin._transport.app.state.accounts
    assert (
        await accounts.authenticate_client("reports", new, address=None)
    ).client_id == "reports"


async def test_patching_a_client_keeps_what_is_not_named(admin, writer):
    await admin.post("/admin/clients", json=CONFIDENTIAL, headers=writer)

    response = await admin.patch(
        "/admin/clients/reports",
        json={"name": "Nightly reports", "scope": "orders:read orders:admin"},
        headers=writer,
    )

    assert response.status_code == 200
    client = response.json()
    assert client["name"] == "Nightly reports"
    assert client["scope"] == "orders:admin orders:read"
    assert client["grant_types"] == ["client_credentials"]
    assert client["client_secret"] is None
    bad = await admin.patch(
        "/admin/clients/reports", json={"grant_types": ["implicit"]}, headers=writer
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "grant_types"


async def test_deleting_a_client_answers_204_then_404(admin, writer):
    await admin.post("/admin/clients", json=CONFIDENTIAL, headers=writer)

    assert (
        await admin.delete("/admin/clients/reports", headers=writer)
    ).status_code == 204
    missing = await admin.get("/admin/clients/reports", headers=writer)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No client has the client_id 'reports'."


async def test_passwords_and_secrets_never_reach_the_logs(admin, writer, caplog):
    caplog.set_level(logging.DEBUG)
    user = (await create(admin, writer)).json()
    await admin.patch(
        f"/admin/users/{user['id']}",
        json={"password": "another passphrase"},
        headers=writer,
    )
    secret = (
        await admin.post("/admin/clients", json=CONFIDENTIAL, headers=writer)
    ).json()["client_secret"]
    rotated = (
        await admin.post("/admin/clients/reports/secret", headers=writer)
    ).json()["client_secret"]
    await admin.post(
        "/admin/users",
        json={"email": "bad", "password": "hunter2hunter2"},
        headers=writer,
    )

    formatter = JsonFormatter("identity")
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "client registered" in logged
    for value in (PASSWORD, "another passphrase", "hunter2hunter2", secret, rotated):
        assert value not in logged
    assert writer["Authorization"].split()[1] not in logged


async def test_control_characters_are_refused_or_not_found_never_a_500(admin, writer):
    created = await admin.post(
        "/admin/users",
        json={"email": "ada\u0000@example.com", "password": PASSWORD},
        headers=writer,
    )
    assert created.status_code == 422
    assert created.json()["errors"][0] == {
        "field": "email",
        "in": "body",
        "reason": "an address has no control characters",
    }

    assert (await admin.get("/admin/users/%00", headers=writer)).status_code == 404
    assert (await admin.delete("/admin/clients/%00", headers=writer)).status_code == 404
    nul_cursor = "AA"  # base64 of one NUL byte
    listed = await admin.get(
        "/admin/users", params={"cursor": nul_cursor}, headers=writer
    )
    assert listed.status_code == 422
    client = await admin.post(
        "/admin/clients",
        json={
            "client_id": "spa",
            "client_type": "public",
            "redirect_uris": ["https://spa.example.com/cb\n"],
        },
        headers=writer,
    )
    assert client.status_code == 422
    assert client.json()["errors"][0]["field"] == "redirect_uris[0]"


async def test_clients_list_in_pages_by_cursor(admin, writer):
    for name in ("c", "a", "d", "b"):
        await admin.post(
            "/admin/clients", json={**CONFIDENTIAL, "client_id": name}, headers=writer
        )

    first = (
        await admin.get("/admin/clients", params={"limit": 3}, headers=writer)
    ).json()
    second = (
        await admin.get(
            "/admin/clients",
            params={"limit": 3, "cursor": first["next_cursor"]},
            headers=writer,
        )
    ).json()

    assert [c["client_id"] for c in first["items"]] == ["a", "b", "c"]
    assert [c["client_id"] for c in second["items"]] == ["d"]
    assert second["next_cursor"] is None


async def test_a_public_client_made_confidential_gets_its_secret_in_that_answer(
    admin, writer
):
    await admin.post(
        "/admin/clients",
        json={
            "client_id": "tool",
            "client_type": "public",
            "redirect_uris": ["http://127.0.0.1:8400/callback"],
        },
        headers=writer,
    )

    changed = await admin.patch(
        "/admin/clients/tool",
        json={"client_type": "confidential", "grant_types": ["client_credentials"]},
        headers=writer,
    )

    assert changed.status_code == 200
    body = changed.json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert len(body["client_secret"]) >= 43
    accounts = admin._transport.app.state.accounts
    client = await accounts.authenticate_client(
        "tool", body["client_secret"], address=None
    )
    assert client.client_type == "confidential"
