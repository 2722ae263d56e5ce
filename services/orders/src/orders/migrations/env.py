"""Alembic environment for orders' database."""

from orders.storage.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata)
