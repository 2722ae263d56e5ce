"""Failed client authentication at the token endpoint is throttled, with Retry-After."""

import base64

import pytest

from .conftest import SECRETS, basic


@pytest.fixture
def settings_overrides():
    return {"client_failures_per_client": 2, "throttle_window_seconds": 120}


def wrong_secret(client_id: str) -> dict[str, str]:
    raw = f"{client_id}:not-the-secret".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def test_a_client_guessed_at_is_throttled_even_with_its_right_secret(identity):
    data = {"grant_type": "client_credentials", "scope": "orders:read"}
    for _ in range(2):
        failed = await identity.http.post(
            "/token", data=data, headers=wrong_secret("service")
        )
        assert failed.status_code == 401
        assert failed.json()["error"] == "invalid_client"

    throttled = await identity.http.post("/token", data=data, headers=basic("service"))

    assert throttled.status_code == 429
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert 110 <= int(throttled.headers["retry-after"]) <= 120
    assert SECRETS["service"] not in throttled.text
