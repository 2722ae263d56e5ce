"""Migration 0002 (accounts) keeps existing users; 0004 indexes what the purge reads."""

import asyncio

import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from identity.storage.database import MIGRATIONS
from identity.storage.grants import AccessTokenRow, AuthorizationCodeRow
from identity.storage.users import UserRepository
from servicekit.database import alembic_config, async_database_url, create_engine


async def tables_and_users(url: str) -> tuple[set[str], list[tuple[str, str]]]:
    engine = create_async_engine(async_database_url(url))
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            users = (
                await connection.execute(sa.text("SELECT id, email FROM users"))
            ).all()
    finally:
        await engine.dispose()
    return set(tables), [tuple(row) for row in users]


async def test_users_of_0001_survive_0002_and_a_downgrade(database_url):
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(command.upgrade, config, "0001")
    engine = create_async_engine(async_database_url(database_url))
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO users (id, email, email_normalized, password_hash, disabled) "
                "VALUES ('u1', 'Ada@example.com', 'ada@example.com', 'x', false)"
            )
        )
    await engine.dispose()

    await asyncio.to_thread(command.upgrade, config, "0002")
    tables, users = await tables_and_users(database_url)
    assert {"clients", "client_secrets", "throttles"} <= tables
    assert users == [("u1", "Ada@example.com")]

    await asyncio.to_thread(command.downgrade, config, "0001")
    tables, users = await tables_and_users(database_url)
    assert not {"clients", "client_secrets", "throttles"} & tables
    assert users == [("u1", "Ada@example.com")]

    await asyncio.to_thread(command.upgrade, config, "head")
    engine = create_engine(database_url)
    try:
        user = await UserRepository(async_sessionmaker(engine)).get("u1")
    finally:
        await engine.dispose()
    assert user is not None
    assert user.updated_at == user.created_at
    assert user.created_at.tzinfo is not None
    assert (user.email_verified, user.name) == (False, None)


EXPIRY_INDEXES = {
    "browser_sessions": {
        "ix_browser_sessions_expires_at",
        "ix_browser_sessions_ended_at",
    },
    "authorization_codes": {
        "ix_authorization_codes_expires_at",
        "ix_authorization_codes_grant_id",
    },
    "access_tokens": {"ix_access_tokens_expires_at"},
    "grants": {"ix_grants_created_at"},
}


async def expiry_indexes(url: str) -> dict[str, set[str]]:
    engine = create_async_engine(async_database_url(url))
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(
                lambda c: {
                    table: {
                        str(index["name"]) for index in inspect(c).get_indexes(table)
                    }
                    for table in EXPIRY_INDEXES
                }
            )
    finally:
        await engine.dispose()
    return {table: names & EXPIRY_INDEXES[table] for table, names in found.items()}


async def test_0004_indexes_the_purged_columns_and_downgrades_cleanly(database_url):
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    with_indexes = await expiry_indexes(database_url)
    await asyncio.to_thread(command.downgrade, config, "0003")
    without = await expiry_indexes(database_url)
    await asyncio.to_thread(command.upgrade, config, "head")

    assert with_indexes == EXPIRY_INDEXES
    assert without == {table: set() for table in EXPIRY_INDEXES}
    assert await expiry_indexes(database_url) == EXPIRY_INDEXES


async def test_the_purge_finds_expired_rows_by_index_not_by_scanning(sqlite_url):
    config = alembic_config(MIGRATIONS, sqlite_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    engine = create_async_engine(async_database_url(sqlite_url))
    plans = {}
    try:
        async with engine.connect() as connection:
            # What delete_in_batches selects: primary keys of expired rows.
            for key, expires_at in (
                (AccessTokenRow.jti, AccessTokenRow.expires_at),
                (AuthorizationCodeRow.code_hash, AuthorizationCodeRow.expires_at),
            ):
                query = select(key).where(expires_at < 1.0)
                compiled = query.compile(compile_kwargs={"literal_binds": True})
                rows = await connection.execute(
                    sa.text(f"EXPLAIN QUERY PLAN {compiled}")
                )
                plans[key.class_.__tablename__] = " ".join(row[-1] for row in rows)
    finally:
        await engine.dispose()

    assert "USING INDEX ix_access_tokens_expires_at" in plans["access_tokens"]
    assert (
        "USING INDEX ix_authorization_codes_expires_at" in plans["authorization_codes"]
    )
