"""Sharing one database session between several reads of one request."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@asynccontextmanager
async def reusing(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession | None
) -> AsyncIterator[AsyncSession]:
    """``session`` when given, else a new one closed on exit.

    The token endpoint's hot path reads the throttling counters and the client
    in one session: each session costs a connection checkout (with SQLite, a
    new connection and its thread), which dominated its cost when measured.
    """
    if session is not None:
        yield session
        return
    async with sessions() as opened:
        yield opened
