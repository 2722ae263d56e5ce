"""The admin API with tokens identity itself issues (the wiring of app.py)."""

from .conftest import basic


async def service_token(identity, scope: str, resource: str | None) -> str:
    data = {"grant_type": "client_credentials", "scope": scope}
    if resource:
        data["resource"] = resource
    response = await identity.http.post("/token", data=data, headers=basic("service"))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_a_token_for_identity_with_users_read_lists_users(identity):
    token = await service_token(identity, "users:read", "identity")

    response = await identity.http.get(
        "/admin/users", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    assert [u["email"] for u in response.json()["items"]] == ["Ada@Example.com"]


async def test_a_token_for_orders_is_refused_by_the_admin_api(identity):
    token = await service_token(identity, "orders:read users:read", "orders")

    response = await identity.http.get(
        "/admin/users", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_reading_is_not_writing(identity):
    token = await service_token(identity, "users:read", "identity")

    response = await identity.http.post(
        "/admin/users",
        json={"email": "grace@example.com", "password": "a long passphrase"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_the_openapi_document_describes_the_admin_api(identity):
    document = (await identity.http.get("/openapi.json")).json()

    create = document["paths"]["/admin/users"]["post"]
    assert create["summary"] == "Create a user."
    assert create["security"] == [{"HTTPBearer": []}]
    assert "/admin/clients/{client_id}/secret" in document["paths"]
