"""Throttling of failed logins and client authentication, in the database."""

import asyncio

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from identity.accounts import Accounts
from identity.domain.users import UserProfile
from identity.errors import (
    ClientAuthenticationFailed,
    ClientThrottled,
    LoginFailed,
    LoginThrottled,
)
from identity.storage.models import ThrottleRow
from identity.throttling import Throttle, ThrottleKind

from .conftest import accounts_settings
from .test_accounts import SERVICE

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def throttled_accounts(sessions, migrated_url, clock):
    """Accounts with small limits: 3 per account or client, 5 per address."""
    settings = accounts_settings(
        migrated_url,
        login_failures_per_account=3,
        login_failures_per_address=5,
        client_failures_per_client=3,
        client_failures_per_address=5,
        throttle_window_seconds=600,
    )
    accounts = Accounts(sessions, settings)
    accounts.throttle = Throttle(sessions, window_seconds=600, clock=clock)
    return accounts


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def fail_login(accounts, email="ada@example.com", address="10.0.0.1"):
    with pytest.raises(LoginFailed):
        await accounts.authenticate_user(email, "wrong password!", address=address)


async def test_an_account_is_throttled_after_its_limit_even_with_the_right_password(
    throttled_accounts, clock
):
    await throttled_accounts.create_user(UserProfile(email="ada@example.com"), PASSWORD)
    for _ in range(3):
        await fail_login(throttled_accounts)
    clock.now += 100

    with pytest.raises(LoginThrottled) as raised:
        await throttled_accounts.authenticate_user(
            "Ada@Example.com", PASSWORD, address="10.0.0.2"
        )

    assert raised.value.retry_after_seconds == 500
    assert str(raised.value) == "too many failed logins; try again in 500 s"


async def test_a_throttled_account_signs_in_again_after_the_window(
    throttled_accounts, clock
):
    await throttled_accounts.create_user(UserProfile(email="ada@example.com"), PASSWORD)
    for _ in range(3):
        await fail_login(throttled_accounts)

    clock.now += 601
    user = await throttled_accounts.authenticate_user(
        "ada@example.com", PASSWORD, address="10.0.0.1"
    )

    assert user.email == "ada@example.com"


async def test_a_successful_login_resets_the_accounts_counter(throttled_accounts):
    await throttled_accounts.create_user(UserProfile(email="ada@example.com"), PASSWORD)
    for _ in range(2):
        await fail_login(throttled_accounts)
    await throttled_accounts.authenticate_user(
        "ada@example.com", PASSWORD, address="10.0.0.1"
    )

    # Two more failures stay under the limit of three: the count started over.
    for _ in range(2):
        await fail_login(throttled_accounts)
    await throttled_accounts.authenticate_user(
        "ada@example.com", PASSWORD, address="10.0.0.1"
    )


async def test_one_address_trying_many_accounts_is_throttled(throttled_accounts):
    await throttled_accounts.create_user(UserProfile(email="ada@example.com"), PASSWORD)
    # Five different accounts, one failure each: no account reaches its limit.
    for index in range(5):
        await fail_login(throttled_accounts, email=f"user{index}@example.com")
    before = counted("identity_throttled_requests_total", kind="login_address")

    with pytest.raises(LoginThrottled):
        await throttled_accounts.authenticate_user(
            "ada@example.com", PASSWORD, address="10.0.0.1"
        )

    # Another address still signs in: only the guessing address is held back.
    user = await throttled_accounts.authenticate_user(
        "ada@example.com", PASSWORD, address="10.0.0.9"
    )
    assert user.email == "ada@example.com"
    assert counted("identity_throttled_requests_total", kind="login_address") == (
        before + 1
    )


async def test_unknown_accounts_are_throttled_like_real_ones(throttled_accounts):
    for _ in range(3):
        await fail_login(throttled_accounts, email="nobody@example.com")

    with pytest.raises(LoginThrottled):
        await throttled_accounts.authenticate_user(
            "nobody@example.com", PASSWORD, address="10.0.0.2"
        )


async def test_login_outcomes_are_counted(throttled_accounts):
    await throttled_accounts.create_user(UserProfile(email="ada@example.com"), PASSWORD)
    success = counted("identity_login_attempts_total", outcome="success")
    failure = counted("identity_login_attempts_total", outcome="failure")

    await fail_login(throttled_accounts)
    await throttled_accounts.authenticate_user(
        "ada@example.com", PASSWORD, address=None
    )

    assert counted("identity_login_attempts_total", outcome="success") == success + 1
    assert counted("identity_login_attempts_total", outcome="failure") == failure + 1


async def test_a_client_is_throttled_after_failed_authentications(
    throttled_accounts, clock
):
    _, secret = await throttled_accounts.register_client(SERVICE)
    for _ in range(3):
        with pytest.raises(ClientAuthenticationFailed):
            await throttled_accounts.authenticate_client(
                "reports", "wrong", address="10.0.0.1"
            )

    with pytest.raises(ClientThrottled) as raised:
        await throttled_accounts.authenticate_client(
            "reports", secret, address="10.0.0.2"
        )
    assert raised.value.retry_after_seconds == 600

    clock.now += 600
    client = await throttled_accounts.authenticate_client(
        "reports", secret, address="10.0.0.2"
    )
    assert client.client_id == "reports"


async def test_one_address_guessing_many_clients_is_throttled(throttled_accounts):
    _, secret = await throttled_accounts.register_client(SERVICE)
    for index in range(5):
        with pytest.raises(ClientAuthenticationFailed):
            await throttled_accounts.authenticate_client(
                f"client-{index}", "guess", address="10.0.0.1"
            )

    with pytest.raises(ClientThrottled):
        await throttled_accounts.authenticate_client(
            "reports", secret, address="10.0.0.1"
        )
    client = await throttled_accounts.authenticate_client(
        "reports", secret, address="10.0.0.3"
    )
    assert client.client_id == "reports"


async def test_counters_are_shared_by_every_replica(sessions, clock):
    # Two Throttle objects stand for two replicas over one database.
    first = Throttle(sessions, window_seconds=60, clock=clock)
    second = Throttle(sessions, window_seconds=60, clock=clock)

    assert await first.record_failure(ThrottleKind.CLIENT, "reports", 3) == 1
    assert await second.record_failure(ThrottleKind.CLIENT, "reports", 3) == 2
    assert (await first.check([(ThrottleKind.CLIENT, "reports")])).blocked_by is None
    assert await second.record_failure(ThrottleKind.CLIENT, "reports", 3) == 3

    state = await first.check([(ThrottleKind.CLIENT, "reports")])
    assert (state.blocked_by, state.retry_after_seconds) == (ThrottleKind.CLIENT, 60)


async def test_a_window_that_passed_starts_the_count_again(sessions, clock):
    throttle = Throttle(sessions, window_seconds=60, clock=clock)
    await throttle.record_failure(ThrottleKind.LOGIN_ACCOUNT, "ada", 3)
    await throttle.record_failure(ThrottleKind.LOGIN_ACCOUNT, "ada", 3)

    clock.now += 61

    assert await throttle.record_failure(ThrottleKind.LOGIN_ACCOUNT, "ada", 3) == 1
    state = await throttle.check([(ThrottleKind.LOGIN_ACCOUNT, "ada")])
    assert state.blocked_by is None
    assert state.counted == {ThrottleKind.LOGIN_ACCOUNT}


async def test_the_longest_block_decides_when_to_retry(sessions, clock):
    throttle = Throttle(sessions, window_seconds=60, clock=clock)
    await throttle.record_failure(ThrottleKind.LOGIN_ADDRESS, "10.0.0.1", 1)
    clock.now += 30
    await throttle.record_failure(ThrottleKind.LOGIN_ACCOUNT, "ada", 1)

    state = await throttle.check(
        [
            (ThrottleKind.LOGIN_ACCOUNT, "ada"),
            (ThrottleKind.LOGIN_ADDRESS, "10.0.0.1"),
        ]
    )

    assert (state.blocked_by, state.retry_after_seconds) == (
        ThrottleKind.LOGIN_ACCOUNT,
        60,
    )


async def test_the_database_never_holds_what_was_typed(sessions, clock):
    throttle = Throttle(sessions, window_seconds=60, clock=clock)
    await throttle.record_failure(ThrottleKind.LOGIN_ACCOUNT, "my-password@oops", 3)

    async with sessions() as session:
        keys = (await session.scalars(select(ThrottleRow.key))).all()

    assert len(keys) == 1
    assert "oops" not in keys[0]
    assert len(keys[0]) == 64


async def test_purging_forgets_only_counters_that_mean_nothing_any_more(
    sessions, clock
):
    throttle = Throttle(sessions, window_seconds=60, clock=clock)
    await throttle.record_failure(ThrottleKind.LOGIN_ADDRESS, "10.0.0.1", 1)
    await throttle.record_failure(ThrottleKind.LOGIN_ADDRESS, "10.0.0.2", 5)
    clock.now += 30
    await throttle.record_failure(ThrottleKind.LOGIN_ADDRESS, "10.0.0.3", 5)
    clock.now += 31

    # .1 was blocked until 60 s and .2's window ended; .3's window still runs.
    assert await throttle.purge() == 2
    state = await throttle.check(
        [(ThrottleKind.LOGIN_ADDRESS, a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3")]
    )
    assert state.counted == {ThrottleKind.LOGIN_ADDRESS}
    assert await throttle.record_failure(ThrottleKind.LOGIN_ADDRESS, "10.0.0.3", 5) == 2


async def test_concurrent_failures_are_all_counted(sessions, clock):
    replicas = [Throttle(sessions, window_seconds=60, clock=clock) for _ in range(4)]

    counts = await asyncio.gather(
        *(
            replicas[i % 4].record_failure(ThrottleKind.CLIENT, "reports", 100)
            for i in range(20)
        )
    )

    # Every increment is atomic: twenty failures, twenty distinct counts.
    assert sorted(counts) == list(range(1, 21))
