"""Orders in the database: reads, keyset pages, and changes that cannot race.

Every change is a single conditional statement or one transaction, so two
replicas (or fifty concurrent requests) never interleave half of one change
with half of another:

- creation claims the ``Idempotency-Key`` row and inserts the order in one
  transaction, ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <the key expired>``
  deciding the winner (a live key is left alone, an expired one taken over);
- updates are ``UPDATE ... WHERE id = :id AND version = :expected``, the
  optimistic lock behind ``If-Match``.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Row,
    Select,
    String,
    Table,
    delete,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orders.domain.listing import Cursor
from orders.domain.orders import Item, Order, Status
from orders.storage.models import IdempotencyKeyRow, OrderRow, UtcDateTime
from orders.storage.reads import OrderReader
from servicekit.purging import delete_in_batches

orders_table: Table = OrderRow.__table__  # type: ignore[assignment]
keys_table: Table = IdempotencyKeyRow.__table__  # type: ignore[assignment]
# Stripe keeps idempotency keys for 24 hours; a retry comes much sooner.
DEFAULT_IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class IdempotencyClaim:
    """What a creation request stores under its key if it is the first."""

    owner: str
    key: str
    fingerprint: str
    response: str
    created_at: datetime


@dataclass(frozen=True)
class StoredResponse:
    """The answer given to the first request with a key."""

    fingerprint: str
    order_id: str
    response: str


def _order(row: Row[Any]) -> Order:
    return Order(
        id=row.id,
        owner=row.owner,
        status=Status(row.status),
        currency=row.currency,
        items=tuple(
            Item(i["sku"], int(i["quantity"]), int(i["unit_price_minor"]))
            for i in row.items
        ),
        total_minor=int(row.total_minor),
        version=int(row.version),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _values(order: Order) -> dict[str, Any]:
    return {
        "owner": order.owner,
        "status": order.status.value,
        "currency": order.currency,
        "items": [
            {
                "sku": i.sku,
                "quantity": i.quantity,
                "unit_price_minor": i.unit_price_minor,
            }
            for i in order.items
        ],
        "total_minor": order.total_minor,
        "version": order.version,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def page_query(
    *, owner: str | None, status: Status | None, after: Cursor | None, limit: int
) -> Select[Any]:
    """The keyset query of one page; each filter combination has its index."""
    query = select(orders_table)
    if owner is not None:
        query = query.where(orders_table.c.owner == owner)
    if status is not None:
        query = query.where(orders_table.c.status == status.value)
    if after is not None:
        # A row comparison, which PostgreSQL and SQLite both answer with one
        # range scan of the (..., created_at, id) index.
        query = query.where(
            tuple_(orders_table.c.created_at, orders_table.c.id)
            < tuple_(
                literal(after.created_at, UtcDateTime()),
                literal(after.order_id, String(36)),
            )
        )
    return query.order_by(
        orders_table.c.created_at.desc(), orders_table.c.id.desc()
    ).limit(limit)


class OrderStore:
    """The orders table and the idempotency keys, over one engine."""

    def __init__(
        self,
        engine: AsyncEngine,
        reader: OrderReader,
        *,
        idempotency_key_ttl: timedelta = DEFAULT_IDEMPOTENCY_KEY_TTL,
    ) -> None:
        self.engine = engine
        self.reader = reader
        self.idempotency_key_ttl = idempotency_key_ttl
        self._insert = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )

    async def start(self) -> None:
        await self.reader.start()

    async def close(self) -> None:
        await self.reader.close()

    async def create(
        self, order: Order, claim: IdempotencyClaim
    ) -> StoredResponse | None:
        """Insert ``order`` unless ``claim``'s key is taken; then its first answer.

        None means ``order`` was created now. A key already taken, even by a
        request committing at this instant, returns what that request stored.
        A key taken longer than the retention ago is taken over, as if unseen:
        the conditional update decides between concurrent requests as the
        insert does (PostgreSQL locks the row; SQLite has one writer).
        """
        insert = self._insert(keys_table).values(
            owner=claim.owner,
            key=claim.key,
            fingerprint=claim.fingerprint,
            order_id=order.id,
            response=claim.response,
            created_at=claim.created_at,
        )
        expired = keys_table.c.created_at < claim.created_at - self.idempotency_key_ttl
        async with self.engine.begin() as connection:
            claimed = await connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[keys_table.c.owner, keys_table.c.key],
                    set_={
                        column: insert.excluded[column]
                        for column in (
                            "fingerprint",
                            "order_id",
                            "response",
                            "created_at",
                        )
                    },
                    where=expired,
                ).returning(keys_table.c.key)
            )
            if claimed.first() is not None:
                await connection.execute(
                    orders_table.insert().values(id=order.id, **_values(order))
                )
                return None
            return await self._stored_response(connection, claim)

    async def _stored_response(
        self, connection: AsyncConnection, claim: IdempotencyClaim
    ) -> StoredResponse:
        row = (
            await connection.execute(
                select(
                    keys_table.c.fingerprint,
                    keys_table.c.order_id,
                    keys_table.c.response,
                ).where(
                    keys_table.c.owner == claim.owner, keys_table.c.key == claim.key
                )
            )
        ).one()
        return StoredResponse(row.fingerprint, row.order_id, row.response)

    async def purge_idempotency_keys(
        self, now: datetime | None = None
    ) -> dict[str, int]:
        """Delete the keys past their retention; how many, by table."""
        moment = datetime.now(UTC) if now is None else now
        expired = IdempotencyKeyRow.created_at < moment - self.idempotency_key_ttl
        deleted = await delete_in_batches(self.engine, IdempotencyKeyRow, expired)
        return {"idempotency_keys": deleted}

    async def get(self, order_id: str) -> Order | None:
        """The order with this id, whoever owns it (see :mod:`.reads`)."""
        return await self.reader.order(order_id)

    async def page(
        self,
        *,
        owner: str | None,
        status: Status | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Order]:
        """Up to ``limit`` orders newest first, after ``after``; ``owner`` None: all."""
        query = page_query(owner=owner, status=status, after=after, limit=limit)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_order(row) for row in rows]

    async def replace(self, order: Order, *, expected_version: int) -> bool:
        """Store ``order`` if the stored one still has ``expected_version``."""
        async with self.engine.begin() as connection:
            changed = await connection.execute(
                update(orders_table)
                .where(
                    orders_table.c.id == order.id,
                    orders_table.c.version == expected_version,
                )
                .values(**_values(order))
            )
        return bool(changed.rowcount == 1)

    async def delete_pending(self, order_id: str, *, expected_version: int) -> bool:
        """Delete the order if it is still pending at ``expected_version``."""
        async with self.engine.begin() as connection:
            deleted = await connection.execute(
                delete(orders_table).where(
                    orders_table.c.id == order_id,
                    orders_table.c.version == expected_version,
                    orders_table.c.status == Status.PENDING.value,
                )
            )
        return bool(deleted.rowcount == 1)
