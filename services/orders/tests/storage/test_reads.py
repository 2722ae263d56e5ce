"""The direct by-id reader returns what the engine wrote, on both backends."""

import sqlite3
from datetime import UTC, datetime

from orders.domain.orders import Item, new_order
from orders.storage.database import MIGRATIONS
from orders.storage.orders import IdempotencyClaim, OrderStore
from orders.storage.reads import SqliteReader, order_reader
from servicekit.database import create_engine, upgrade_database_async


async def test_an_order_written_is_read_back_whole(database_url):
    await upgrade_database_async(MIGRATIONS, database_url)
    engine = create_engine(database_url, sqlite_pool_size=2)
    store = OrderStore(engine, order_reader(database_url))
    await store.start()
    now = datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC)
    order = new_order(
        owner="alice", currency="JPY", items=[Item("A-1", 3, 700)], now=now
    )
    try:
        await store.create(
            order, IdempotencyClaim("alice", "k", "f" * 64, "{}", created_at=now)
        )

        read = await store.get(order.id)
        missing = await store.get("no-such-id")
    finally:
        await store.close()
        await engine.dispose()

    assert read == order
    assert missing is None


async def test_the_sqlite_reader_puts_the_file_in_wal_mode(tmp_path):
    path = tmp_path / "fresh.db"
    url = f"sqlite:///{path}"
    await upgrade_database_async(MIGRATIONS, url)
    reader = SqliteReader(str(path))

    await reader.start()
    await reader.close()

    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
