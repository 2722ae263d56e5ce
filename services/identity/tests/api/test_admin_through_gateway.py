"""The admin API behind the gateway, as `make run` serves it under /auth."""

import httpx

from tests.support.processes import service_token


def test_a_user_created_through_the_gateway_is_found_at_its_location(platform):
    token = service_token(platform, scope="users:read users:write", resource="identity")
    headers = {"Authorization": f"Bearer {token}"}

    created = httpx.post(
        f"{platform.public_url}/auth/admin/users",
        json={"email": "Grace@Example.com", "password": "a long passphrase"},
        headers=headers,
        timeout=10,
    )

    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == f"{platform.public_url}/auth/admin/users/{created.json()['id']}"
    found = httpx.get(location, headers=headers, timeout=10)
    assert found.status_code == 200
    assert found.json()["email"] == "Grace@Example.com"
    taken = httpx.post(
        f"{platform.public_url}/auth/admin/users",
        json={"email": "grace@example.com", "password": "a long passphrase"},
        headers=headers,
        timeout=10,
    )
    assert taken.status_code == 409
    assert taken.headers["content-type"] == "application/problem+json"
