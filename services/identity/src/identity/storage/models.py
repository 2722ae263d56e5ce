"""identity's tables."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC when read.

    SQLite keeps no offset and hands back naive values; PostgreSQL keeps
    ``timestamptz``. Both come back as aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return value


def storable(value: str) -> bool:
    """Whether ``value`` can be a query parameter on every database.

    PostgreSQL text cannot hold NUL, and the query fails; a key with one names
    nothing, so lookups answer "not found" instead of an error.
    """
    return "\x00" not in value


class Base(DeclarativeBase):
    """Declarative base whose metadata the migrations describe."""


class UserRow(Base):
    """A person who can sign in."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Emails are unique regardless of case; the lowered form carries the index.
    email_normalized: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(200))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_users_created_at", "created_at"),)


class ClientRow(Base):
    """A registered OAuth client; lists are JSON arrays, scope space-separated."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    client_type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scope: Mapped[str] = mapped_column(Text)
    audience: Mapped[list[str]] = mapped_column(JSON)
    skip_consent: Mapped[bool] = mapped_column(Boolean)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    # Where the registration comes from: "file" (IDENTITY_CLIENTS_FILE, rewritten
    # at every start), "admin" (the admin API) or "demo" (IDENTITY_SEED_DEMO).
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ClientSecretRow(Base):
    """A confidential client's secret, as HMAC-SHA256 under a derived key."""

    __tablename__ = "client_secrets"

    client_id: Mapped[str] = mapped_column(
        String(100),
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        primary_key=True,
    )
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ThrottleRow(Base):
    """Recent failures of one kind for one key (an account, client or address).

    ``key`` is a SHA-256 of the account, client or address, so that what people
    type into the e-mail field (sometimes their password) is never stored.
    Times are seconds since the epoch, compared the same way on both databases.
    """

    __tablename__ = "throttles"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started: Mapped[float] = mapped_column(Float)
    blocked_until: Mapped[float] = mapped_column(Float)
