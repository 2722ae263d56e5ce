"""Browser sessions, consents, grants, codes and refresh tokens in the database.

Codes, refresh tokens and session cookies are random opaque strings given to
the client once; only their SHA-256 is stored (their 256 bits of entropy make
a slow hash pointless), so a database dump reveals none of them. Timestamps
are seconds since the epoch, the same on SQLite and PostgreSQL.

Single use (codes) and rotation (refresh tokens) are each one conditional
``UPDATE ... WHERE used_at IS NULL``: whichever request's update matches the
row wins, on any number of replicas, and every other request sees zero rows.
"""

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Float, Index, String, Text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from identity.errors import InvalidGrant
from identity.storage.models import Base


def new_secret() -> str:
    """A random opaque value of 256 bits (RFC 6749 section 10.10)."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class BrowserSessionRow(Base):
    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    auth_time: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class ConsentRow(Base):
    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[float] = mapped_column(Float)


class GrantRow(Base):
    """What a user authorised a client to do: the family of its tokens."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)  # JSON list of audiences
    auth_time: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuthorizationCodeRow(Base):
    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(36), index=True)
    client_id: Mapped[str] = mapped_column(String(100))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(36), index=True)
    client_id: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float)
    rotated_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AccessTokenRow(Base):
    """Access tokens of user grants, and revoked ones, by ``jti``.

    Resource servers verify JWTs offline and cannot learn of a revocation
    before the token expires; identity's own userinfo and introspection do.
    """

    __tablename__ = "access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_access_tokens_grant_id", "grant_id"),)


@dataclass(frozen=True)
class BrowserSession:
    id: str
    user_id: str
    auth_time: float


@dataclass(frozen=True)
class Grant:
    id: str
    client_id: str
    user_id: str
    scope: frozenset[str]
    resource: tuple[str, ...]
    auth_time: float


@dataclass(frozen=True)
class CodeRedemption:
    grant: Grant
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    expires_at: float


@dataclass(frozen=True)
class RefreshRedemption:
    grant: Grant
    scope: frozenset[str]


def _grant(row: GrantRow) -> Grant:
    return Grant(
        id=row.id,
        client_id=row.client_id,
        user_id=row.user_id,
        scope=frozenset(row.scope.split()),
        resource=tuple(json.loads(row.resource)),
        auth_time=row.auth_time,
    )


class GrantStore:
    """The repository of everything a sign-in and its grants leave behind."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, reuse_grace: float
    ) -> None:
        self._sessions = sessions
        self.reuse_grace = reuse_grace

    async def start_session(self, user_id: str, lifetime: float) -> tuple[str, float]:
        """A new browser session; returns the cookie value and ``auth_time``."""
        cookie, now = new_secret(), time.time()
        async with self._sessions() as db, db.begin():
            db.add(
                BrowserSessionRow(
                    id=digest(cookie),
                    user_id=user_id,
                    auth_time=now,
                    expires_at=now + lifetime,
                )
            )
        return cookie, now

    async def find_session(self, cookie: str | None) -> BrowserSession | None:
        if not cookie:
            return None
        async with self._sessions() as db:
            row = await db.get(BrowserSessionRow, digest(cookie))
        if row is None or row.ended_at is not None or row.expires_at < time.time():
            return None
        return BrowserSession(row.id, row.user_id, row.auth_time)

    async def end_session(self, session_id: str) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(BrowserSessionRow)
                .where(BrowserSessionRow.id == session_id)
                .values(ended_at=time.time())
            )

    async def consented_scope(self, user_id: str, client_id: str) -> frozenset[str]:
        async with self._sessions() as db:
            row = await db.get(ConsentRow, (user_id, client_id))
        return frozenset(row.scope.split()) if row else frozenset()

    async def record_consent(
        self, user_id: str, client_id: str, scope: frozenset[str]
    ) -> None:
        async with self._sessions() as db, db.begin():
            row = await db.get(ConsentRow, (user_id, client_id), with_for_update=True)
            if row is None:
                db.add(
                    ConsentRow(
                        user_id=user_id,
                        client_id=client_id,
                        scope=" ".join(sorted(scope)),
                        granted_at=time.time(),
                    )
                )
            else:
                row.scope = " ".join(sorted(scope | set(row.scope.split())))
                row.granted_at = time.time()

    async def issue_code(
        self,
        *,
        client_id: str,
        user_id: str,
        scope: frozenset[str],
        resource: Sequence[str],
        auth_time: float,
        redirect_uri: str,
        code_challenge: str,
        nonce: str | None,
        lifetime: float,
    ) -> str:
        """A new grant and the authorization code that redeems it."""
        code, now, grant_id = new_secret(), time.time(), str(uuid.uuid4())
        async with self._sessions() as db, db.begin():
            db.add(
                GrantRow(
                    id=grant_id,
                    client_id=client_id,
                    user_id=user_id,
                    scope=" ".join(sorted(scope)),
                    resource=json.dumps(list(resource)),
                    auth_time=auth_time,
                    created_at=now,
                )
            )
            db.add(
                AuthorizationCodeRow(
                    code_hash=digest(code),
                    grant_id=grant_id,
                    client_id=client_id,
                    redirect_uri=redirect_uri,
                    code_challenge=code_challenge,
                    nonce=nonce,
                    expires_at=now + lifetime,
                )
            )
        return code

    async def redeem_code(self, code: str, client_id: str) -> CodeRedemption:
        """Mark the code used, once; a second use revokes its grant.

        OAuth 2.1 section 4.1.3: a code used twice is denied, and what was
        issued from it SHOULD be revoked, as the code has probably leaked.
        """
        code_hash, now = digest(code), time.time()
        async with self._sessions() as db, db.begin():
            used = await db.execute(
                update(AuthorizationCodeRow)
                .where(
                    AuthorizationCodeRow.code_hash == code_hash,
                    AuthorizationCodeRow.used_at.is_(None),
                )
                .values(used_at=now)
            )
            row = await db.get(AuthorizationCodeRow, code_hash)
            first_use = used.rowcount == 1  # type: ignore[attr-defined]
            if row is not None and not first_use:
                await self._revoke_grant(db, row.grant_id, now)
            grant = await db.get(GrantRow, row.grant_id) if row else None
        if row is None or grant is None:
            raise InvalidGrant("the authorization code is not valid")
        if not first_use:
            raise InvalidGrant(
                "the authorization code was already used; "
                "the tokens issued from it are revoked"
            )
        if row.client_id != client_id:
            raise InvalidGrant("the authorization code was not issued to this client")
        if row.expires_at < now:
            raise InvalidGrant("the authorization code has expired")
        return CodeRedemption(
            _grant(grant),
            row.redirect_uri,
            row.code_challenge,
            row.nonce,
            row.expires_at,
        )

    async def issue_refresh_token(
        self, grant: Grant, scope: frozenset[str], lifetime: float
    ) -> str:
        token = new_secret()
        async with self._sessions() as db, db.begin():
            db.add(
                RefreshTokenRow(
                    token_hash=digest(token),
                    grant_id=grant.id,
                    client_id=grant.client_id,
                    scope=" ".join(sorted(scope)),
                    expires_at=time.time() + lifetime,
                )
            )
        return token

    async def redeem_refresh_token(
        self, token: str, client_id: str
    ) -> RefreshRedemption:
        """Rotate the token: it works once; a replay revokes its family.

        OAuth 2.1 section 4.3.1 and RFC 9700 section 4.14.2. The rotation is one
        conditional UPDATE, so of concurrent requests exactly one wins. A replay
        within ``reuse_grace`` seconds of the rotation (two tabs, a retried
        request) is refused without revoking, so the winner keeps its tokens.
        """
        token_hash, now = digest(token), time.time()
        async with self._sessions() as db, db.begin():
            rotated = await db.execute(
                update(RefreshTokenRow)
                .where(
                    RefreshTokenRow.token_hash == token_hash,
                    RefreshTokenRow.client_id == client_id,
                    RefreshTokenRow.rotated_at.is_(None),
                    RefreshTokenRow.expires_at >= now,
                )
                .values(rotated_at=now)
            )
            won = rotated.rowcount == 1  # type: ignore[attr-defined]
            row = await db.get(RefreshTokenRow, token_hash)
            grant = await db.get(GrantRow, row.grant_id) if row else None
            replayed = (
                not won
                and row is not None
                and row.client_id == client_id
                and row.rotated_at is not None
            )
            within_grace = (
                replayed
                and row is not None
                and row.rotated_at is not None
                and now - row.rotated_at <= self.reuse_grace
            )
            if replayed and not within_grace and row is not None:
                await self._revoke_grant(db, row.grant_id, now)
        if row is None or grant is None or row.client_id != client_id:
            raise InvalidGrant("the refresh token is not valid for this client")
        if within_grace:
            raise InvalidGrant("the refresh token was just used")
        if replayed:
            raise InvalidGrant(
                "the refresh token was already used; its grant is revoked"
            )
        if not won:
            raise InvalidGrant("the refresh token has expired")
        if grant.revoked_at is not None:
            raise InvalidGrant("the refresh token has been revoked")
        return RefreshRedemption(_grant(grant), frozenset(row.scope.split()))

    async def refresh_token_scope(self, token: str) -> frozenset[str] | None:
        """The scope a refresh token carries, read without using it up."""
        async with self._sessions() as db:
            row = await db.get(RefreshTokenRow, digest(token))
        return frozenset(row.scope.split()) if row else None

    async def inspect_refresh_token(self, token: str) -> dict[str, object] | None:
        """RFC 7662 members of an active refresh token, or None."""
        now = time.time()
        async with self._sessions() as db:
            row = await db.get(RefreshTokenRow, digest(token))
            grant = await db.get(GrantRow, row.grant_id) if row else None
        if row is None or grant is None or grant.revoked_at is not None:
            return None
        if row.rotated_at is not None or row.expires_at < now:
            return None
        return {
            "token_type": "refresh_token",
            "client_id": row.client_id,
            "sub": grant.user_id,
            "scope": row.scope,
            "exp": int(row.expires_at),
        }

    async def find_grant(self, grant_id: str) -> Grant | None:
        async with self._sessions() as db:
            row = await db.get(GrantRow, grant_id)
        if row is None or row.revoked_at is not None:
            return None
        return _grant(row)

    async def record_access_token(
        self, jti: str, grant_id: str | None, expires_at: float
    ) -> None:
        async with self._sessions() as db, db.begin():
            db.add(AccessTokenRow(jti=jti, grant_id=grant_id, expires_at=expires_at))

    async def access_token_revoked(self, jti: str) -> bool:
        """Whether the token was revoked, itself or through its grant."""
        async with self._sessions() as db:
            row = await db.get(AccessTokenRow, jti)
            if row is None:
                return False
            if row.revoked_at is not None:
                return True
            if row.grant_id is None:
                return False
            grant = await db.get(GrantRow, row.grant_id)
        return grant is None or grant.revoked_at is not None

    async def revoke_access_token(self, jti: str, expires_at: float) -> None:
        now = time.time()
        async with self._sessions() as db, db.begin():
            updated = await db.execute(
                update(AccessTokenRow)
                .where(AccessTokenRow.jti == jti)
                .values(revoked_at=now)
            )
            if updated.rowcount == 1:  # type: ignore[attr-defined]
                return
        try:
            async with self._sessions() as db, db.begin():
                db.add(AccessTokenRow(jti=jti, expires_at=expires_at, revoked_at=now))
        except IntegrityError:
            # Revoked by a concurrent request: the outcome is the same.
            return

    async def revoke_refresh_token(self, token: str, client_id: str) -> bool:
        """RFC 7009 section 2.1: revoking a refresh token revokes its grant."""
        async with self._sessions() as db, db.begin():
            row = await db.get(RefreshTokenRow, digest(token))
            if row is None or row.client_id != client_id:
                return False
            await self._revoke_grant(db, row.grant_id, time.time())
            return True

    async def revoke_user(self, user_id: str) -> None:
        """End every session and revoke every grant of a user (on disable)."""
        now = time.time()
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(GrantRow)
                .where(GrantRow.user_id == user_id, GrantRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            await db.execute(
                update(BrowserSessionRow)
                .where(
                    BrowserSessionRow.user_id == user_id,
                    BrowserSessionRow.ended_at.is_(None),
                )
                .values(ended_at=now)
            )

    @staticmethod
    async def _revoke_grant(db: AsyncSession, grant_id: str, now: float) -> None:
        await db.execute(
            update(GrantRow)
            .where(GrantRow.id == grant_id, GrantRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
