"""The login page: one answer for every failure, and throttling with Retry-After."""

import re

import pytest

from .conftest import PASSWORD


@pytest.fixture
def settings_overrides():
    return {"login_failures_per_account": 3, "throttle_window_seconds": 300}


def comparable(page: str) -> str:
    """The page without what differs by request (CSRF token, echoed e-mail)."""
    return re.sub(r'value="[^"]*"', 'value=""', page)


async def attempt(identity, email, password):
    return await identity.login(
        await identity.authorize("web"), email=email, password=password
    )


async def test_unknown_user_wrong_password_and_disabled_user_look_the_same(identity):
    unknown = await attempt(identity, "nobody@example.com", PASSWORD)
    wrong = await attempt(identity, identity.user.email, "wrong password!")
    await identity.provider.accounts.set_user_disabled(identity.user.id, True)
    disabled = await attempt(identity, identity.user.email, PASSWORD)

    assert {r.status_code for r in (unknown, wrong, disabled)} == {401}
    assert "The e-mail address or the password is wrong." in unknown.text
    assert (
        comparable(unknown.text) == comparable(wrong.text) == comparable(disabled.text)
    )
    assert PASSWORD not in unknown.text + disabled.text


async def test_an_account_guessed_at_is_throttled_with_retry_after(identity):
    for _ in range(3):
        failed = await attempt(identity, identity.user.email, "wrong password!")
        assert failed.status_code == 401

    throttled = await attempt(identity, identity.user.email.upper(), PASSWORD)

    assert throttled.status_code == 429
    assert 290 <= int(throttled.headers["retry-after"]) <= 300
    assert "Too many failed logins; try again in" in throttled.text
