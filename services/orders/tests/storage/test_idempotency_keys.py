"""Idempotency keys past their retention are purged; migration 0003 indexes them."""

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from orders.domain.orders import Item, new_order
from orders.storage.database import MIGRATIONS
from orders.storage.models import IdempotencyKeyRow
from orders.storage.orders import IdempotencyClaim, OrderStore
from orders.storage.reads import order_reader
from servicekit.database import (
    alembic_config,
    async_database_url,
    create_engine,
    upgrade_database_async,
)
from servicekit.purging import PeriodicPurge
from tests.support.purging import REFUSING_HOST, failures_while_running

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=24)


async def create(store, owner, key, created_at):
    order = new_order(
        owner=owner, currency="EUR", items=[Item("A-1", 1, 100)], now=created_at
    )
    claim = IdempotencyClaim(owner, key, "f" * 64, "{}", created_at=created_at)
    assert await store.create(order, claim) is None


async def test_keys_past_their_retention_are_deleted_and_the_others_kept(
    database_url,
):
    await upgrade_database_async(MIGRATIONS, database_url)
    engine = create_engine(database_url)
    store = OrderStore(engine, order_reader(database_url), idempotency_key_ttl=TTL)
    try:
        await create(store, "alice", "old", NOW - TTL - timedelta(seconds=1))
        await create(store, "bob", "old", NOW - TTL - timedelta(hours=5))
        await create(store, "alice", "recent", NOW - TTL + timedelta(seconds=1))

        first = await store.purge_idempotency_keys(now=NOW)
        again = await store.purge_idempotency_keys(now=NOW)
        async with engine.connect() as connection:
            kept = (
                await connection.execute(
                    select(IdempotencyKeyRow.owner, IdempotencyKeyRow.key)
                )
            ).all()
    finally:
        await engine.dispose()

    assert first == {"idempotency_keys": 2}
    assert again == {"idempotency_keys": 0}
    assert [tuple(row) for row in kept] == [("alice", "recent")]


async def test_a_database_failure_is_logged_and_does_not_stop_the_purge(caplog):
    url = f"postgresql://orders@{REFUSING_HOST}/orders"
    engine = create_engine(url)
    store = OrderStore(engine, order_reader(url))
    try:
        failures, running = await failures_while_running(
            PeriodicPurge(store.purge_idempotency_keys, interval=0.05), caplog
        )
    finally:
        await engine.dispose()

    assert len(failures) >= 2
    assert running


async def test_migration_0003_adds_the_index_and_removes_it_on_downgrade(
    database_url,
):
    config = alembic_config(MIGRATIONS, database_url)
    await upgrade_database_async(MIGRATIONS, database_url)
    with_index = await key_indexes(database_url)

    await asyncio.to_thread(command.downgrade, config, "0002")
    without = await key_indexes(database_url)
    await asyncio.to_thread(command.upgrade, config, "head")

    assert with_index == {"ix_idempotency_keys_created_at"}
    assert without == set()
    assert await key_indexes(database_url) == with_index


async def key_indexes(database_url):
    engine = create_async_engine(async_database_url(database_url))
    try:
        async with engine.connect() as connection:
            indexes = await connection.run_sync(
                lambda c: inspect(c).get_indexes("idempotency_keys")
            )
    finally:
        await engine.dispose()
    return {index["name"] for index in indexes}
