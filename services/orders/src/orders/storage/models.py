"""orders' tables."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite keeps no offset, so values come back naive; they are stored in UTC
    and given their zone back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"expected an aware datetime, got {value!r}")
        converted = value.astimezone(UTC)
        return converted.replace(tzinfo=None) if dialect.name == "sqlite" else converted

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class Base(DeclarativeBase):
    """Declarative base whose metadata the migrations describe."""


class OrderRow(Base):
    """One order, owned by the subject that created it."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    items: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        # Keyset pagination walks each index backwards, newest first; the
        # equality columns lead so that one range scan serves a page:
        # a caller's orders, a caller's orders in one status, and back
        # office's view of every order (all, or in one status).
        Index("ix_orders_owner_created", "owner", "created_at", "id"),
        Index("ix_orders_owner_status_created", "owner", "status", "created_at", "id"),
        Index("ix_orders_created", "created_at", "id"),
        Index("ix_orders_status_created", "status", "created_at", "id"),
    )


class IdempotencyKeyRow(Base):
    """A creation request already answered, by the client's ``Idempotency-Key``.

    The primary key makes the claim on a key atomic: of concurrent requests
    with one key, exactly one inserts this row (and its order, in the same
    transaction); the others find it and replay its response. A row older than
    the retention (``ORDERS_IDEMPOTENCY_KEY_TTL_SECONDS``) counts as absent: the
    next request with its key takes it over, and the purge deletes it.
    """

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(36))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
