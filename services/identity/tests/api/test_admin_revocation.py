"""Disabling or deleting a user through the admin API ends what they hold."""

import base64

import pytest

from identity.domain.clients import Client

from .conftest import basic

ADMIN_TOOL = Client(
    client_id="admin-tool",
    client_type="confidential",
    name="Admin tool",
    redirect_uris=(),
    post_logout_redirect_uris=(),
    grant_types=frozenset({"client_credentials"}),
    scope=frozenset({"users:read", "users:write"}),
    audience=(),
    skip_consent=False,
    token_endpoint_auth_method="client_secret_basic",
)


@pytest.fixture
async def admin_headers(identity):
    _, secret = await identity.provider.accounts.register_client(ADMIN_TOOL)
    basic = base64.b64encode(f"admin-tool:{secret}".encode()).decode()
    response = await identity.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "scope": "users:write",
            "resource": "identity",
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def refresh(identity, refresh_token):
    return await identity.token(
        "web", {"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


@pytest.mark.parametrize("action", ["disable", "delete"])
async def test_the_users_refresh_token_stops_working(identity, admin_headers, action):
    tokens = await identity.code_flow(scope="openid offline_access orders:read")
    path = f"/admin/users/{identity.user.id}"

    if action == "disable":
        answered = await identity.http.post(f"{path}/disable", headers=admin_headers)
        assert answered.status_code == 200
    else:
        answered = await identity.http.delete(path, headers=admin_headers)
        assert answered.status_code == 204

    refused = await refresh(identity, tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_a_disabled_user_cannot_sign_in_again(identity, admin_headers):
    await identity.http.post(
        f"/admin/users/{identity.user.id}/disable", headers=admin_headers
    )

    answered = await identity.login(await identity.authorize("web"))

    assert answered.status_code == 401
    assert "The e-mail address or the password is wrong." in answered.text


async def test_a_rotated_secret_stops_at_once_despite_the_authentication_cache(
    identity, admin_headers
):
    data = {"grant_type": "client_credentials", "scope": "orders:read"}
    first = await identity.http.post("/token", data=data, headers=basic("service"))
    assert first.status_code == 200

    rotated = await identity.http.post(
        "/admin/clients/service/secret", headers=admin_headers
    )
    assert rotated.status_code == 200

    stale = await identity.http.post("/token", data=data, headers=basic("service"))
    assert stale.status_code == 401
    assert stale.json()["error"] == "invalid_client"
    new_secret = rotated.json()["client_secret"]
    raw = base64.b64encode(f"service:{new_secret}".encode()).decode()
    fresh = await identity.http.post(
        "/token", data=data, headers={"Authorization": f"Basic {raw}"}
    )
    assert fresh.status_code == 200
