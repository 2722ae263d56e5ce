"""Alembic environment for identity's database."""

from identity.storage.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata)
