import subprocess
import sys

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from orders.storage.database import MIGRATIONS
from servicekit.database import async_database_url, upgrade_database_async


def test_a_bad_database_url_stops_start_up():
    finished = subprocess.run(
        [sys.executable, "-m", "orders"],
        env={"PATH": "/usr/bin:/bin", "ORDERS_DATABASE_URL": "oracle://db"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert finished.stderr.startswith(
        "orders: invalid configuration: ORDERS_DATABASE_URL: Value error, "
        "unsupported database 'oracle'"
    )


async def test_migrations_create_the_schema(database_url):
    await upgrade_database_async(MIGRATIONS, database_url)
    await upgrade_database_async(MIGRATIONS, database_url)

    engine = create_async_engine(async_database_url(database_url))
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            indexes = await connection.run_sync(
                lambda c: {i["name"] for i in inspect(c).get_indexes("orders")}
            )
    finally:
        await engine.dispose()
    assert {"orders", "alembic_version"} <= set(tables)
    assert "ix_orders_owner_created" in indexes
