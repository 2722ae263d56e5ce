"""Deleting rows that expired: in bounded batches, and periodically.

A purge is plain ``DELETE ... WHERE <expired>`` statements, each limited to a
batch of rows so that no transaction holds many locks or a long write lock
(SQLite has one writer). Several replicas may purge at the same moment: a row
deleted by one is simply not found by the other, so the counts add up to the
rows deleted once.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import sqlalchemy
from sqlalchemy import ColumnElement, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
# The first purge waits this long (or one interval if shorter): start-up goes
# first, and a process restarted more often than the interval still purges.
FIRST_PURGE_DELAY = 60.0


async def delete_in_batches(
    database: AsyncEngine | async_sessionmaker[AsyncSession],
    model: type[DeclarativeBase],
    condition: ColumnElement[bool],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Delete the rows of ``model`` matching ``condition``, a batch per transaction.

    Rows are chosen by primary key (one column or several) in a subquery,
    because neither SQLite nor PostgreSQL has ``DELETE ... LIMIT``. Returns how
    many rows this call deleted.
    """
    primary_key = sqlalchemy.inspect(model).primary_key
    chosen = select(*primary_key).where(condition).limit(batch_size)
    key = primary_key[0] if len(primary_key) == 1 else tuple_(*primary_key)
    statement = (
        delete(model)
        .where(key.in_(chosen))
        .execution_options(synchronize_session=False)
    )
    deleted = 0
    while True:
        async with database.begin() as connection:
            result = await connection.execute(statement)
        count = int(result.rowcount)  # type: ignore[attr-defined]
        deleted += count
        if count < batch_size:
            return deleted


def purge_from_command_line(
    purge: Callable[[], Coroutine[Any, Any, Mapping[str, int]]],
) -> None:
    """One purge for a service's ``purge`` command: logged, the counts printed.

    The counts go to standard output as one JSON object, for a cron job's log
    or a script; a failure propagates, so the command exits non-zero.
    """
    counts: dict[str, int] = dict(asyncio.run(purge()))
    logger.info(
        "expired rows purged", extra={"deleted": counts, "total": sum(counts.values())}
    )
    print(json.dumps(counts, sort_keys=True))


class PeriodicPurge:
    """Runs ``purge`` every ``interval`` seconds in the background.

    ``purge`` returns how many rows it deleted per table; the counts are logged
    at INFO. A failure (the database restarting, a lost connection) is logged
    as a WARNING and the next interval tries again: expired rows waiting an
    hour longer cost nothing, a crashed service costs much.
    """

    def __init__(
        self,
        purge: Callable[[], Awaitable[Mapping[str, int]]],
        *,
        interval: float,
        name: str = "expired rows purged",
    ) -> None:
        self._purge = purge
        self.interval = interval
        self._event = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the background task is there and has not ended."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin purging in the background; an interval of 0 disables it."""
        if self.interval > 0:
            self._task = asyncio.create_task(self._run_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> Mapping[str, int] | None:
        """One purge; the counts, or None when it failed (and was logged)."""
        try:
            counts = await self._purge()
        except Exception as exc:
            logger.warning(
                "purge failed",
                extra={"error": f"{type(exc).__name__}: {exc}"},
                exc_info=True,
            )
            return None
        logger.info(
            self._event, extra={"deleted": dict(counts), "total": sum(counts.values())}
        )
        return counts

    async def _run_forever(self) -> None:
        await asyncio.sleep(min(self.interval, FIRST_PURGE_DELAY))
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)
