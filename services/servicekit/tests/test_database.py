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
