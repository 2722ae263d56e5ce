"""The purge deletes what expired and keeps what reuse detection still needs."""

import asyncio
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from identity.errors import InvalidGrant
from identity.storage.database import MIGRATIONS
from identity.storage.grants import (
    AccessTokenRow,
    AuthorizationCodeRow,
    BrowserSessionRow,
    GrantRow,
    GrantStore,
    RefreshTokenRow,
    digest,
)
from identity.storage.models import ThrottleRow
from identity.storage.retention import Retention
from identity.throttling import Throttle, ThrottleKind
from servicekit.database import create_engine, upgrade_database_async

GRACE = 3600.0
DAY = 86400.0


@pytest.fixture
async def sessions(database_url):
    await upgrade_database_async(MIGRATIONS, database_url)
    engine = create_engine(database_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def store(sessions):
    return GrantStore(sessions, reuse_grace=0.0)


@pytest.fixture
def retention(sessions):
    throttle = Throttle(sessions, window_seconds=900)
    return Retention(sessions, throttle, grace=GRACE, batch_size=2)


async def issue_code(store, lifetime=60.0):
    return await store.issue_code(
        client_id="web",
        user_id="user-1",
        scope=frozenset({"openid", "offline_access"}),
        resource=["orders"],
        auth_time=0.0,
        redirect_uri="https://web.test/cb",
        code_challenge="c" * 43,
        nonce=None,
        lifetime=lifetime,
    )


async def refresh_family(store, first_lifetime, current_lifetime):
    """A grant whose first refresh token was rotated: (rotated, current)."""
    grant = (await store.redeem_code(await issue_code(store), "web")).grant
    first = await store.issue_refresh_token(grant, grant.scope, first_lifetime)
    await store.redeem_refresh_token(first, "web")
    current = await store.issue_refresh_token(grant, grant.scope, current_lifetime)
    return first, current


async def outcome(call):
    try:
        await call
    except InvalidGrant as exc:
        return exc.description
    return "won"


async def count(sessions, column, *conditions):
    async with sessions() as db:
        return await db.scalar(select(func.count(column)).where(*conditions))


async def test_rows_expired_beyond_the_grace_are_deleted_and_live_ones_kept(
    store, retention, sessions
):
    for _ in range(5):
        await store.start_session("user-1", lifetime=60)
    live_session, _ = await store.start_session("user-1", lifetime=2 * DAY)
    ended_session, _ = await store.start_session("user-1", lifetime=2 * DAY)
    await store.end_session(digest(ended_session))
    await issue_code(store, lifetime=60)
    live_code = await issue_code(store, lifetime=2 * DAY)
    await store.record_access_token("old-jti", None, time.time() + 60)
    await store.record_access_token("live-jti", None, time.time() + 2 * DAY)
    await Throttle(sessions, window_seconds=900).record_failure(
        ThrottleKind.LOGIN_ACCOUNT, "ada@example.com", limit=5
    )

    # A day later, everything issued for a minute is a day past its expiry.
    counts = await retention.purge(now=time.time() + DAY)

    assert counts == {
        "browser_sessions": 6,  # five expired, one ended
        "authorization_codes": 1,
        "refresh_tokens": 0,
        "access_tokens": 1,
        "throttles": 1,
        "grants": 1,  # the expired code's
    }
    assert await store.find_session(live_session) is not None
    assert await count(sessions, BrowserSessionRow.id) == 1
    assert await count(sessions, AuthorizationCodeRow.code_hash) == 1
    assert (
        await count(
            sessions,
            AuthorizationCodeRow.code_hash,
            AuthorizationCodeRow.code_hash == digest(live_code),
        )
        == 1
    )
    assert await count(sessions, AccessTokenRow.jti) == 1
    assert (
        await count(sessions, AccessTokenRow.jti, AccessTokenRow.jti == "live-jti") == 1
    )
    assert await count(sessions, GrantRow.id) == 1
    assert await count(sessions, ThrottleRow.key) == 0


async def test_rows_within_the_grace_are_kept(store, retention, sessions):
    await store.start_session("user-1", lifetime=60)
    await issue_code(store, lifetime=60)
    await store.record_access_token("jti", None, time.time() + 60)

    counts = await retention.purge(now=time.time() + 60 + GRACE - 30)

    assert sum(counts.values()) == 0
    assert await count(sessions, BrowserSessionRow.id) == 1
    assert await count(sessions, AuthorizationCodeRow.code_hash) == 1
    assert await count(sessions, AccessTokenRow.jti) == 1


async def test_a_rotated_refresh_token_stays_while_its_family_lives(
    store, retention, sessions
):
    rotated, current = await refresh_family(store, 60, 2 * DAY)

    # The rotated token expired a day ago; the family's last token lives on.
    counts = await retention.purge(now=time.time() + DAY)

    assert counts["refresh_tokens"] == 0
    assert counts["grants"] == 0
    assert await count(sessions, RefreshTokenRow.token_hash) == 2
    assert await outcome(store.redeem_refresh_token(rotated, "web")) == (
        "the refresh token was already used; its grant is revoked"
    )
    assert await outcome(store.redeem_refresh_token(current, "web")) == (
        "the refresh token has been revoked"
    )


async def test_a_family_whose_last_token_expired_goes_with_its_grant(
    store, retention, sessions
):
    rotated, current = await refresh_family(store, 60, 120)
    await refresh_family(store, 60, 2 * DAY)

    counts = await retention.purge(now=time.time() + DAY)

    assert counts["refresh_tokens"] == 2
    assert counts["grants"] == 1
    assert await count(sessions, RefreshTokenRow.token_hash) == 2
    assert await count(sessions, GrantRow.id) == 1
    for token in (rotated, current):
        assert await outcome(store.redeem_refresh_token(token, "web")) == (
            "the refresh token is not valid for this client"
        )


async def test_a_redeemed_code_is_kept_until_its_expiry_so_reuse_still_revokes(
    store, retention
):
    code = await issue_code(store, lifetime=60)
    grant = (await store.redeem_code(code, "web")).grant
    token = await store.issue_refresh_token(grant, grant.scope, 2 * DAY)

    counts = await retention.purge(now=time.time() + 60 + GRACE - 30)

    assert counts["authorization_codes"] == 0
    assert await outcome(store.redeem_code(code, "web")) == (
        "the authorization code was already used; the tokens issued from it are revoked"
    )
    assert await outcome(store.redeem_refresh_token(token, "web")) == (
        "the refresh token has been revoked"
    )


async def test_a_grant_with_a_live_access_token_stays_and_the_token_is_not_revoked(
    store, retention, sessions
):
    grant = (await store.redeem_code(await issue_code(store), "web")).grant
    await store.record_access_token("jti", grant.id, time.time() + 2 * DAY)

    counts = await retention.purge(now=time.time() + DAY)

    assert counts["authorization_codes"] == 1
    assert counts["grants"] == 0
    assert await store.find_grant(grant.id) == grant
    assert await store.access_token_revoked("jti") is False


async def test_two_replicas_purging_at_once_delete_each_row_once(
    store, sessions, database_url
):
    for _ in range(10):
        await store.start_session("user-1", lifetime=60)
    other_engine = create_engine(database_url)
    other = async_sessionmaker(other_engine, expire_on_commit=False)
    replicas = [
        Retention(s, Throttle(s, window_seconds=900), batch_size=3)
        for s in (sessions, other)
    ]

    try:
        counts = await asyncio.gather(
            *(replica.purge(now=time.time() + DAY) for replica in replicas)
        )
    finally:
        await other_engine.dispose()

    assert sum(c["browser_sessions"] for c in counts) == 10
    assert await count(sessions, BrowserSessionRow.id) == 0
