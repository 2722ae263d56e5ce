"""The hot read, an order by id, without the ORM layers in the way.

``GET /orders/{id}`` is most of an orders API's traffic. Through SQLAlchemy's
async engine a primary-key read costs a pool checkout, a reset on return and
several hops between the event loop and the driver, together about ten times
the query itself; these readers go to the driver directly:

- SQLite: one plain ``sqlite3`` connection, queried inline on the event loop.
  In WAL mode a reader never waits for a writer, and a primary-key lookup in
  a local file takes microseconds, less than handing it to a thread would.
- PostgreSQL: an asyncpg pool of its own, one round trip per read.

Writes keep going through the engine, whose transactions they need.
"""

import json
import sqlite3
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from opentelemetry import trace
from sqlalchemy.engine import make_url

from orders.domain.orders import Item, Order, Status

_COLUMNS = (
    "id, owner, status, currency, items, total_minor, version, created_at, updated_at"
)
_BY_ID = f"SELECT {_COLUMNS} FROM orders WHERE id = "  # noqa: S608 - constants only
# Rows remembered with the Order made from them; cleared when full.
_DECODED_ROWS = 1024


_tracer = trace.get_tracer(__name__)


def _read_span(system: str) -> AbstractContextManager[object]:
    """A database client span around a read, when the request is traced.

    SQLAlchemy's instrumentation does not see these readers; without a span of
    their own the trace of the most frequent request would end at orders'
    server span. An untraced request (the benchmark's) pays only the check.
    """
    if not trace.get_current_span().is_recording():
        return nullcontext()
    return _tracer.start_as_current_span(
        "SELECT orders",
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system": system, "db.operation": "SELECT"},
    )


class OrderReader(Protocol):
    """Reads one order by id."""

    async def start(self) -> None: ...

    async def order(self, order_id: str) -> Order | None: ...

    async def close(self) -> None: ...


def _utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def order_from_columns(row: Any) -> Order:
    """An :class:`Order` from the columns of ``_COLUMNS``, in that order."""
    items = row[4] if isinstance(row[4], list) else json.loads(row[4])
    return Order(
        id=row[0],
        owner=row[1],
        status=Status(row[2]),
        currency=row[3],
        items=tuple(
            Item(i["sku"], int(i["quantity"]), int(i["unit_price_minor"]))
            for i in items
        ),
        total_minor=int(row[5]),
        version=int(row[6]),
        created_at=_utc(row[7]),
        updated_at=_utc(row[8]),
    )


class SqliteReader:
    """Primary-key reads on a read-only ``sqlite3`` connection, inline."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        # The same row always makes the same Order, and popular orders are
        # read again and again: decoding their items' JSON and timestamps
        # each time was a fifth of orders' own work on a read. A changed
        # order is a different row (its version and updated_at differ).
        self._decoded: dict[tuple[Any, ...], Order] = {}

    async def start(self) -> None:
        connection = sqlite3.connect(self.path, check_same_thread=False)
        # WAL is a property of the file; set it here too, since this
        # connection may be the first one: only in WAL mode do readers never
        # wait for writers, which is what makes reading inline safe.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA query_only=ON")
        # A reader can still meet a lock during WAL recovery; a short bound
        # keeps the event loop from stalling behind it (the read then fails).
        connection.execute("PRAGMA busy_timeout=100")
        self._connection = connection

    async def order(self, order_id: str) -> Order | None:
        if self._connection is None:
            raise RuntimeError("SqliteReader.start() was not awaited")
        with _read_span("sqlite"):
            row = self._connection.execute(_BY_ID + "?", (order_id,)).fetchone()
        if row is None:
            return None
        order = self._decoded.get(row)
        if order is None:
            order = order_from_columns(row)
            if len(self._decoded) >= _DECODED_ROWS:
                self._decoded.clear()
            self._decoded[row] = order
        return order

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresReader:
    """Primary-key reads on an asyncpg pool of its own."""

    def __init__(self, dsn: str, *, max_size: int = 5) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self._pool: Any = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.max_size
        )

    async def order(self, order_id: str) -> Order | None:
        if self._pool is None:
            raise RuntimeError("PostgresReader.start() was not awaited")
        with _read_span("postgresql"):
            row = await self._pool.fetchrow(_BY_ID + "$1", order_id)
        return None if row is None else order_from_columns(row)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def order_reader(database_url: str) -> OrderReader:
    """The direct reader for ``database_url``'s backend."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SqliteReader(url.database or ":memory:")
    plain = url.set(drivername="postgresql")
    return PostgresReader(plain.render_as_string(hide_password=False))
