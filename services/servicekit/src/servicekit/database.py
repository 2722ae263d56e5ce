"""SQLAlchemy engines and Alembic migrations for the services that own data.

SQLite (aiosqlite) is the embedded default and PostgreSQL (asyncpg) what
containers and clusters use; URLs are accepted in their plain form
(``postgresql://``, ``sqlite:///``) and given their async driver here.
"""

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from servicekit.config import ConfigurationError

_ASYNC_DRIVERS = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}


def async_database_url(url: str) -> URL:
    """``url`` with the async driver of its backend; unknown backends are refused."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(f"not a database URL: {url!r}") from exc

    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ConfigurationError(
            f"unsupported database {backend!r} in {parsed.render_as_string()!r}; "
            "use postgresql://... or sqlite:///path"
        )
    backend = "postgresql" if backend == "postgres" else backend
    return parsed.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")


def _enable_sqlite_safety(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; the busy timeout makes concurrent
    # writers wait instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _ensure_sqlite_folder(database_url: URL) -> None:
    if database_url.get_backend_name() != "sqlite":
        return
    if database_url.database and database_url.database != ":memory:":
        Path(database_url.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(
    url: str, *, pool_size: int = 10, sqlite_pool_size: int = 0
) -> AsyncEngine:
    """An async engine for ``url``; a SQLite file's folder is created if missing.

    SQLite connections are opened per use unless ``sqlite_pool_size`` > 0:
    opening one (a thread for aiosqlite, the pragmas) costs milliseconds, far
    more than a read by primary key, so a service on a hot read path pools them.
    """
    database_url = async_database_url(url)
    _ensure_sqlite_folder(database_url)

    # Looked up at call time, so that the OpenTelemetry SQLAlchemy
    # instrumentation (which wraps the module's function) traces the engine.
    create = sqlalchemy_asyncio.create_async_engine
    if database_url.get_backend_name() == "sqlite":
        if sqlite_pool_size > 0:
            engine = create(
                database_url,
                poolclass=AsyncAdaptedQueuePool,
                pool_size=sqlite_pool_size,
                max_overflow=sqlite_pool_size,
            )
        else:
            engine = create(database_url, poolclass=NullPool)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_safety)
        return engine

    return create(
        database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def alembic_config(script_location: Path, url: str) -> Config:
    """An Alembic configuration for a service's migrations folder and database."""
    _ensure_sqlite_folder(async_database_url(url))
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option(
        "sqlalchemy.url",
        async_database_url(url)
        .render_as_string(hide_password=False)
        .replace("%", "%%"),
    )
    return config


def upgrade_database(script_location: Path, url: str) -> None:
    """Apply every migration up to the newest; safe to run again."""
    command.upgrade(alembic_config(script_location, url), "head")


async def upgrade_database_async(script_location: Path, url: str) -> None:
    """:func:`upgrade_database` from inside a running event loop."""
    await asyncio.to_thread(upgrade_database, script_location, url)
