"""``python -m orders purge`` deletes the expired idempotency keys once."""

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from orders.domain.orders import Item, new_order
from orders.storage.database import MIGRATIONS
from orders.storage.models import IdempotencyKeyRow
from orders.storage.orders import IdempotencyClaim, OrderStore
from orders.storage.reads import order_reader
from servicekit.database import create_engine, upgrade_database_async


async def test_the_command_deletes_expired_keys_and_prints_the_counts(tmp_path):
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    await upgrade_database_async(MIGRATIONS, url)
    now = datetime.now(UTC)
    engine = create_engine(url)
    store = OrderStore(engine, order_reader(url), idempotency_key_ttl=timedelta(1))
    try:
        for key, age in (("stale", timedelta(hours=2)), ("fresh", timedelta(0))):
            created = now - age
            order = new_order(
                owner="alice", currency="EUR", items=[Item("A-1", 1, 100)], now=created
            )
            claim = IdempotencyClaim("alice", key, "f" * 64, "{}", created_at=created)
            assert await store.create(order, claim) is None
    finally:
        await engine.dispose()
    env = {
        "PATH": "/usr/bin:/bin",
        "ORDERS_DATABASE_URL": url,
        "ORDERS_IDEMPOTENCY_KEY_TTL_SECONDS": "3600",
    }

    first = await asyncio.to_thread(purge_command, env)
    second = await asyncio.to_thread(purge_command, env)

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.strip().splitlines()[-1]) == {"idempotency_keys": 1}
    assert json.loads(second.stdout.strip().splitlines()[-1]) == {"idempotency_keys": 0}
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            kept = (await connection.execute(select(IdempotencyKeyRow.key))).all()
    finally:
        await engine.dispose()
    assert [row.key for row in kept] == ["fresh"]


def purge_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orders", "purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
