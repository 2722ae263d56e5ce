import subprocess
import sys

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from identity.storage.database import MIGRATIONS
from servicekit.database import async_database_url, upgrade_database_async


def run_identity(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "identity"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("IDENTITY_PORT", "eighty", "IDENTITY_PORT: Input should be a valid integer"),
        (
            "IDENTITY_PORT",
            "70000",
            "IDENTITY_PORT: Input should be less than or equal to 65535",
        ),
        (
            "IDENTITY_ISSUER",
            "ftp://x",
            "IDENTITY_ISSUER: Value error, expected an absolute http(s) URL",
        ),
        (
            "IDENTITY_DATABASE_URL",
            "mysql://db/x",
            "IDENTITY_DATABASE_URL: Value error, unsupported database 'mysql'",
        ),
        (
            "IDENTITY_LOG_LEVEL",
            "loud",
            "IDENTITY_LOG_LEVEL: String should match pattern",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_naming_variable_and_value(
    variable, value, message
):
    finished = run_identity({variable: value})

    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"identity: invalid configuration: {message}")
    assert lines[0].endswith(f"(given {value!r})")


async def test_migrations_create_the_schema(database_url):
    await upgrade_database_async(MIGRATIONS, database_url)
    # A second run finds nothing to do.
    await upgrade_database_async(MIGRATIONS, database_url)

    engine = create_async_engine(async_database_url(database_url))
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    assert {"users", "alembic_version"} <= set(tables)
