"""Fixtures of identity's tests: migrated databases and an Accounts over them."""

import base64
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from identity.accounts import Accounts
from identity.settings import Settings
from identity.storage.database import MIGRATIONS
from servicekit.database import create_engine, upgrade_database_async

TEST_KEK = base64.b64encode(b"t" * 32).decode()
# Argon2id parameters small enough for a test to hash many passwords quickly.
FAST_PASSWORDS = {
    "password_time_cost": 1,
    "password_memory_kib": 1024,
    "password_parallelism": 1,
}


def accounts_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for ``database_url`` with fast hashing; override any field."""
    values: dict[str, object] = {
        "database_url": database_url,
        "key_encryption_key": TEST_KEK,
        **FAST_PASSWORDS,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """An empty database (SQLite, then PostgreSQL) at the newest schema."""
    await upgrade_database_async(MIGRATIONS, database_url)
    return database_url


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def disabled_users() -> list[str]:
    """The ids ``on_user_disabled`` was called with, in order."""
    return []


@pytest.fixture
def accounts(
    sessions: async_sessionmaker[AsyncSession],
    migrated_url: str,
    disabled_users: list[str],
) -> Accounts:
    async def record(user_id: str) -> None:
        disabled_users.append(user_id)

    return Accounts(sessions, accounts_settings(migrated_url), on_user_disabled=record)


@pytest.fixture
def settings_for() -> object:
    """:func:`accounts_settings`, for test folders that cannot import this module."""
    return accounts_settings


@pytest.fixture
def run_identity() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs ``python -m identity <args>`` with only ``env`` and a PATH."""

    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "identity", *args],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
