"""The grant store as two replicas see it: two engines on one database."""

import asyncio

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from identity.errors import InvalidGrant
from identity.storage.database import MIGRATIONS
from identity.storage.grants import GrantStore
from servicekit.database import create_engine, upgrade_database_async


@pytest.fixture
async def replicas(database_url):
    await upgrade_database_async(MIGRATIONS, database_url)
    engines = [create_engine(database_url) for _ in range(2)]
    stores = [
        GrantStore(async_sessionmaker(e, expire_on_commit=False), reuse_grace=2.0)
        for e in engines
    ]
    yield stores
    for engine in engines:
        await engine.dispose()


async def issue_code(store):
    return await store.issue_code(
        client_id="web",
        user_id="user-1",
        scope=frozenset({"openid", "orders:read"}),
        resource=["orders"],
        auth_time=0.0,
        redirect_uri="https://web.test/cb",
        code_challenge="c" * 43,
        nonce=None,
        lifetime=60,
    )


async def issue_refresh_token(store):
    redeemed = await store.redeem_code(await issue_code(store), "web")
    return await store.issue_refresh_token(redeemed.grant, redeemed.grant.scope, 60)


async def outcome(call):
    try:
        await call
    except InvalidGrant as exc:
        return exc.description
    return "won"


async def test_concurrent_refreshes_on_two_replicas_exactly_one_wins(replicas):
    token = await issue_refresh_token(replicas[0])

    results = await asyncio.gather(
        *(outcome(replicas[i % 2].redeem_refresh_token(token, "web")) for i in range(6))
    )

    assert results.count("won") == 1
    assert set(results) - {"won"} == {"the refresh token was just used"}


async def test_concurrent_code_redemptions_on_two_replicas_exactly_one_wins(replicas):
    code = await issue_code(replicas[0])

    results = await asyncio.gather(
        *(outcome(replicas[i % 2].redeem_code(code, "web")) for i in range(4))
    )

    assert results.count("won") == 1
    assert set(results) - {"won"} == {
        "the authorization code was already used; the tokens issued from it are revoked"
    }


async def test_a_replay_after_the_grace_period_revokes_the_family(replicas):
    store = GrantStore(replicas[0]._sessions, reuse_grace=0.0)
    token = await issue_refresh_token(store)
    await store.redeem_refresh_token(token, "web")

    replay = await outcome(store.redeem_refresh_token(token, "web"))

    assert replay == "the refresh token was already used; its grant is revoked"
