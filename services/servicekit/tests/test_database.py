import pytest

from servicekit.config import ConfigurationError
from servicekit.database import async_database_url, create_engine, ping


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db/x", "postgresql+asyncpg://u:p@db/x"),
        ("postgres://u:p@db/x", "postgresql+asyncpg://u:p@db/x"),
        ("postgresql+asyncpg://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("sqlite:///.data/x.db", "sqlite+aiosqlite:///.data/x.db"),
    ],
)
def test_plain_urls_get_their_async_driver(given, expected):
    assert async_database_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("url", ["mysql://db/x", "not a url"])
def test_unsupported_databases_are_refused_by_name(url):
    with pytest.raises(ConfigurationError, match="database"):
        async_database_url(url)


async def test_a_sqlite_folder_is_created_and_answers(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'new' / 'folder' / 'x.db'}")
    try:
        await ping(engine)
    finally:
        await engine.dispose()

    assert (tmp_path / "new" / "folder" / "x.db").exists()


@pytest.mark.postgres
async def test_postgresql_answers(postgres_url):
    engine = create_engine(postgres_url)
    try:
        await ping(engine)
    finally:
        await engine.dispose()


async def test_a_pooled_sqlite_engine_reuses_its_connections_with_wal(tmp_path):
    from sqlalchemy import text
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    engine = create_engine(f"sqlite:///{tmp_path / 'pooled.db'}", sqlite_pool_size=2)
    try:
        for _ in range(3):
            async with engine.connect() as connection:
                mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        pool = engine.pool
        assert isinstance(pool, AsyncAdaptedQueuePool)
        assert pool.checkedin() == 1
    finally:
        await engine.dispose()

    assert mode == "wal"
