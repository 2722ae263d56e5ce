"""Listing stays an index range scan on PostgreSQL with many orders.

The table is filled with generated rows (``ROWS`` orders of ``OWNERS``
subjects; the README shows the same plans at a million), analysed, and each
kind of page is EXPLAINed: every one must read its index backwards and stop at
the limit, with no sort and no scan of the whole table.
"""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from orders.domain.listing import Cursor
from orders.domain.orders import Status
from orders.storage.database import MIGRATIONS
from orders.storage.orders import page_query
from servicekit.database import create_engine, upgrade_database_async

pytestmark = pytest.mark.postgres

ROWS = 200_000
OWNERS = 200

_FILL = """
INSERT INTO orders (id, owner, status, currency, items, total_minor, version,
                    created_at, updated_at)
SELECT md5(n::text),
       'user-' || (n % :owners),
       (ARRAY['pending','confirmed','shipped','delivered','cancelled'])[1 + (n / 7) % 5],
       'EUR',
       '[{"sku": "A", "quantity": 1, "unit_price_minor": 100}]',
       100, 1,
       timestamptz '2026-01-01' + n * interval '1 second',
       timestamptz '2026-01-01' + n * interval '1 second'
FROM generate_series(1, :rows) AS n
"""


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


async def _fill(url: str) -> None:
    await upgrade_database_async(MIGRATIONS, url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(_FILL), {"rows": ROWS, "owners": OWNERS})
            await connection.execute(text("ANALYZE orders"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def filled_url(postgres_server) -> str:
    """One database of ``ROWS`` orders, shared by the module's tests."""
    url: str = postgres_server.create_database()
    asyncio.run(_fill(url))
    return url


CURSOR = Cursor(datetime(2026, 1, 3, tzinfo=UTC), "m")


@pytest.mark.parametrize(
    ("owner", "status", "after", "index"),
    [
        pytest.param("user-7", None, None, "ix_orders_owner_created", id="mine"),
        pytest.param("user-7", None, CURSOR, "ix_orders_owner_created", id="mine-next"),
        pytest.param(
            "user-7",
            Status.SHIPPED,
            CURSOR,
            "ix_orders_owner_status_created",
            id="mine-by-status",
        ),
        pytest.param(None, None, CURSOR, "ix_orders_created", id="everyone"),
        pytest.param(
            None,
            Status.PENDING,
            None,
            # A fifth of all rows match: walking the time index and skipping
            # the others is as cheap as the status index, and PostgreSQL may
            # pick either; both stop after the page.
            {"ix_orders_status_created", "ix_orders_created"},
            id="everyone-by-status",
        ),
    ],
)
async def test_each_page_is_a_backward_index_scan(
    filled_url, owner, status, after, index
):
    query = page_query(owner=owner, status=status, after=after, limit=21)
    sql = query.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )

    engine = create_engine(filled_url)
    try:
        async with engine.connect() as connection:
            explained = (
                await connection.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"))
            ).scalar_one()
    finally:
        await engine.dispose()

    root = (explained if isinstance(explained, list) else json.loads(explained))[0]
    nodes = _nodes(root["Plan"])
    types = [node["Node Type"] for node in nodes]
    assert types[0] == "Limit"
    scans = [n for n in nodes if n["Node Type"] in ("Index Scan", "Index Only Scan")]
    accepted = index if isinstance(index, set) else {index}
    assert len(scans) == 1, types
    assert scans[0]["Index Name"] in accepted
    assert scans[0]["Scan Direction"] == "Backward"
    assert "Sort" not in types
    assert "Seq Scan" not in types
