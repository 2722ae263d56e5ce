"""Throttling of failed logins and failed client authentication, in the database.

Failures are counted per key (an account, a client, an address) in a fixed
window; when a key's count reaches its limit, attempts with that key are refused
for one window from that failure, and the answer says when to retry. The
counters live in the ``throttles`` table, so every replica sees the same
counts (RFC 9700 section 4.5 and OAuth 2.1 section 7.4 ask for brute-force
protection wherever credentials are checked).

An increment is a single ``INSERT ... ON CONFLICT DO UPDATE``, atomic on both
SQLite and PostgreSQL. Checking happens before the credentials are verified,
so a few attempts already in flight when the limit is reached still complete;
the limit is therefore approximate by the number of concurrent attempts.
Rows whose window and block are over mean nothing any more (the next failure
starts again from one); :meth:`Throttle.purge` deletes them, at every start
and with the periodic purge.
"""

import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import case, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity.storage.models import ThrottleRow
from identity.storage.sessions import reusing


class ThrottleKind(StrEnum):
    """What a counter counts; also the ``kind`` label of the throttling metric."""

    LOGIN_ACCOUNT = "login_account"
    LOGIN_ADDRESS = "login_address"
    CLIENT = "client"
    CLIENT_ADDRESS = "client_address"


@dataclass(frozen=True)
class ThrottleState:
    """What :meth:`Throttle.check` found for a set of keys."""

    blocked_by: ThrottleKind | None
    retry_after_seconds: int
    # Kinds whose key has a counter, so that a success knows what to reset.
    counted: frozenset[ThrottleKind]


def throttle_key(value: str) -> str:
    """The stored form of an account, client id or address: its SHA-256.

    People sometimes type their password into the e-mail field; hashing keeps
    that out of the database.
    """
    return hashlib.sha256(value.encode()).hexdigest()


class Throttle:
    """Counters of recent failures, shared by every replica through the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._window = float(window_seconds)
        self._clock = clock

    async def check(
        self,
        keys: Iterable[tuple[ThrottleKind, str]],
        *,
        session: AsyncSession | None = None,
    ) -> ThrottleState:
        """Whether any of these keys is blocked, and which ones have counters.

        One query (in ``session`` if given); when several keys are blocked, the
        longest wait is the answer.
        """
        wanted = [(kind.value, throttle_key(value)) for kind, value in keys]
        if not wanted:
            return ThrottleState(None, 0, frozenset())
        now = self._clock()
        async with reusing(self._sessions, session) as session:
            rows = (
                await session.execute(
                    select(ThrottleRow.kind, ThrottleRow.blocked_until).where(
                        tuple_(ThrottleRow.kind, ThrottleRow.key).in_(wanted)
                    )
                )
            ).all()
        counted = frozenset(ThrottleKind(kind) for kind, _ in rows)
        blocks = [(ThrottleKind(kind), until) for kind, until in rows if until > now]
        if not blocks:
            return ThrottleState(None, 0, counted)
        kind, until = max(blocks, key=lambda block: block[1])
        return ThrottleState(kind, max(1, math.ceil(until - now)), counted)

    async def record_failure(self, kind: ThrottleKind, value: str, limit: int) -> int:
        """Count one failure for ``value``; returns the count in the current window."""
        now = self._clock()
        stale = ThrottleRow.window_started <= now - self._window
        failures = case((stale, 1), else_=ThrottleRow.failures + 1)
        async with self._sessions.begin() as session:
            insert = _insert_for(session).values(
                kind=kind.value,
                key=throttle_key(value),
                failures=1,
                window_started=now,
                blocked_until=now + self._window if limit <= 1 else 0.0,
            )
            upsert = insert.on_conflict_do_update(
                index_elements=[ThrottleRow.kind, ThrottleRow.key],
                set_={
                    "failures": failures,
                    "window_started": case(
                        (stale, now), else_=ThrottleRow.window_started
                    ),
                    "blocked_until": case(
                        (failures >= limit, now + self._window),
                        else_=ThrottleRow.blocked_until,
                    ),
                },
            ).returning(ThrottleRow.failures)
            count = (await session.execute(upsert)).scalar_one()
        return int(count)

    async def reset(self, kind: ThrottleKind, value: str) -> None:
        """Forget the failures of ``value`` (after a success)."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(ThrottleRow).where(
                    ThrottleRow.kind == kind.value,
                    ThrottleRow.key == throttle_key(value),
                )
            )

    async def purge(self, now: float | None = None) -> int:
        """Delete counters whose window and block are both over; how many."""
        now = self._clock() if now is None else now
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ThrottleRow).where(
                    ThrottleRow.window_started <= now - self._window,
                    ThrottleRow.blocked_until <= now,
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _insert_for(session: AsyncSession) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ON CONFLICT (the generic one has not)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(ThrottleRow)
    return sqlite.insert(ThrottleRow)
