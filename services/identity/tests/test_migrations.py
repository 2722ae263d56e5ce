"""Migration 0002 (accounts) upgrades existing users and downgrades cleanly."""

import asyncio

import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from identity.storage.database import MIGRATIONS
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
