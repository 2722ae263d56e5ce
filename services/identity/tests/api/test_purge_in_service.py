"""The running service purges expired rows, and reuse detection survives it."""

import asyncio
import logging

import pytest

from identity.storage.retention import GRACE_SECONDS


@pytest.mark.parametrize(
    "settings_overrides",
    [{"refresh_token_reuse_grace_seconds": 0, "purge_interval_seconds": 0.2}],
)
async def test_the_service_purges_and_a_replayed_refresh_token_still_revokes(
    identity, caplog
):
    caplog.set_level(logging.INFO, logger="servicekit.purging")
    grants = identity.provider.grants
    expired, _ = await grants.start_session(identity.user.id, -GRACE_SECONDS - 60)
    tokens = await identity.code_flow(scope="openid orders:read")
    rotated = await refresh(identity, tokens["refresh_token"])

    purged = await wait_for_a_purge(caplog)
    replay = await refresh(identity, tokens["refresh_token"])
    newest = await refresh(identity, rotated.json()["refresh_token"])

    assert rotated.status_code == 200, rotated.text
    assert purged["browser_sessions"] >= 1
    assert await grants.find_session(expired) is None
    assert replay.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token was already used; its grant is revoked",
    }
    assert newest.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token has been revoked",
    }


async def refresh(identity, token):
    return await identity.token(
        "web", {"grant_type": "refresh_token", "refresh_token": token}
    )


async def wait_for_a_purge(caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    """The counts of the first logged purge that deleted a browser session."""
    for _ in range(400):  # 20 s at most
        for record in caplog.records:
            deleted: dict[str, int] = getattr(record, "deleted", {})
            if record.getMessage() == "expired rows purged" and deleted.get(
                "browser_sessions"
            ):
                return deleted
        await asyncio.sleep(0.05)
    raise AssertionError("no purge deleted the expired session within 20 s")
