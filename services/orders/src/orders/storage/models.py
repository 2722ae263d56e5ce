"""orders' tables."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Keyset pagination walks (owner, created_at, id) newest first.
        Index("ix_orders_owner_created", "owner", "created_at", "id"),
        Index("ix_orders_created", "created_at", "id"),
    )
