"""What of the expired rows may be deleted, and when.

Every row that a sign-in or a grant leaves behind expires, but some must
outlive their own expiry for reuse detection to keep working:

- a redeemed authorization code stays until its own expiry, so that a second
  use still revokes what the first one issued (OAuth 2.1 section 4.1.3);
- a rotated refresh token stays until the last token of its family expires,
  so that a replay still revokes the family (RFC 9700 section 4.14.2); a
  family is the chain of tokens of one grant;
- a grant stays while any code, refresh token or access token refers to it:
  an access token whose grant is missing counts as revoked.

Rows are deleted once their expiry is ``grace`` seconds past, which absorbs
clock differences between replicas and the database and keeps a recent
incident's rows for whoever investigates it. Each table is purged with plain
``DELETE`` statements in bounded batches (:func:`delete_in_batches`), so any
number of replicas may purge at once.
"""

import time

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity.storage.grants import (
    AccessTokenRow,
    AuthorizationCodeRow,
    BrowserSessionRow,
    GrantRow,
    RefreshTokenRow,
)
from identity.storage.models import Base
from identity.throttling import Throttle
from servicekit.purging import DEFAULT_BATCH_SIZE, delete_in_batches

# An hour past expiry: longer than any clock skew, short next to the lifetimes.
GRACE_SECONDS = 3600.0


def _sessions_over(cutoff: float) -> ColumnElement[bool]:
    return or_(
        BrowserSessionRow.expires_at < cutoff, BrowserSessionRow.ended_at < cutoff
    )


def _families_over(cutoff: float) -> ColumnElement[bool]:
    finished_families = (
        select(RefreshTokenRow.grant_id)
        .group_by(RefreshTokenRow.grant_id)
        .having(func.max(RefreshTokenRow.expires_at) < cutoff)
    )
    return RefreshTokenRow.grant_id.in_(finished_families)


def _grants_unreferenced(cutoff: float) -> ColumnElement[bool]:
    return (
        (GrantRow.created_at < cutoff)
        & ~exists().where(AuthorizationCodeRow.grant_id == GrantRow.id)
        & ~exists().where(RefreshTokenRow.grant_id == GrantRow.id)
        & ~exists().where(AccessTokenRow.grant_id == GrantRow.id)
    )


class Retention:
    """Deletes the rows no request can need any more."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        throttle: Throttle,
        *,
        grace: float = GRACE_SECONDS,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._sessions = sessions
        self._throttle = throttle
        self.grace = grace
        self.batch_size = batch_size

    async def purge(self, now: float | None = None) -> dict[str, int]:
        """Delete what expired more than ``grace`` ago; the count per table.

        Grants go last: the codes and tokens deleted before are what kept them.
        """
        moment = time.time() if now is None else now
        cutoff = moment - self.grace
        counts = {
            "browser_sessions": await self._delete(
                BrowserSessionRow, _sessions_over(cutoff)
            ),
            "authorization_codes": await self._delete(
                AuthorizationCodeRow, AuthorizationCodeRow.expires_at < cutoff
            ),
            "refresh_tokens": await self._delete(
                RefreshTokenRow, _families_over(cutoff)
            ),
            "access_tokens": await self._delete(
                AccessTokenRow, AccessTokenRow.expires_at < cutoff
            ),
            "throttles": await self._throttle.purge(moment),
        }
        counts["grants"] = await self._delete(GrantRow, _grants_unreferenced(cutoff))
        return counts

    async def _delete(self, model: type[Base], condition: ColumnElement[bool]) -> int:
        return await delete_in_batches(
            self._sessions, model, condition, batch_size=self.batch_size
        )
