"""Signing keys in the database, their private parts encrypted under the KEK.

Each replica keeps the published keys in memory (private parts decrypted once)
and reloads them every ``refresh_interval`` seconds, so signing a token costs
no database round trip. Creating a key is guarded by the database: a key's
``generation`` is unique, so when two replicas decide at the same moment that
key N is due, one insert wins and the other replica loads the winner's key.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, Integer, LargeBinary, String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from identity import metrics
from identity.keys import schedule
from identity.keys.encryption import KeyEncryption
from identity.keys.material import (
    SigningKey,
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_jwk_members,
    thumbprint,
)
from identity.keys.schedule import RotationPolicy
from identity.storage.models import Base

logger = logging.getLogger(__name__)


class SigningKeyRow(Base):
    """One signing key; ``generation`` orders keys and guards their creation."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, unique=True)
    algorithm: Mapped[str] = mapped_column(String(8))
    public_jwk: Mapped[str] = mapped_column(Text)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)
    activates_at: Mapped[float] = mapped_column(Float)


class NoSigningKey(RuntimeError):
    """No key signs yet: the store was not loaded, or the database has none."""


class KeyStore:
    """The published keys of this issuer and the one that signs now."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encryption: KeyEncryption,
        policy: RotationPolicy,
        algorithm: str,
    ) -> None:
        self._sessions = sessions
        self._encryption = encryption
        self.policy = policy
        self.algorithm = algorithm
        self._keys: list[SigningKey] = []
        self._task: asyncio.Task[None] | None = None
        metrics.signing_key_age.set_function(self._active_key_age)

    def _active_key_age(self) -> float:
        now = time.time()
        key = schedule.active(self._keys, now)
        return 0.0 if key is None else now - key.activates_at

    @property
    def keys(self) -> Sequence[SigningKey]:
        return tuple(self._keys)

    def signing_key(self, now: float | None = None) -> SigningKey:
        """The key that signs at ``now``, from memory."""
        key = schedule.active(self._keys, time.time() if now is None else now)
        if key is None:
            raise NoSigningKey("no signing key is active; is the store loaded?")
        return key

    def find(self, kid: str) -> SigningKey | None:
        return next((key for key in self._keys if key.kid == kid), None)

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """The JWK Set: public members only (RFC 7517 section 5)."""
        moment = time.time() if now is None else now
        keys = schedule.published(self._keys, moment, self.policy)
        return {"keys": [key.published_jwk for key in keys]}

    async def maintain(self) -> None:
        """Create the key that is due, forget expired ones, reload the rest."""
        rows = await self._rows()
        now = time.time()
        due = schedule.next_key_due(rows, now, self.policy)
        if due is not None:
            await self._create(max((r.generation for r in rows), default=0) + 1, due)
            rows = await self._rows()
        await self._prune(rows, now)
        self._load(rows, now)

    async def rotate(self) -> SigningKey | None:
        """Schedule a new key now (published ahead); None if one is pending."""
        rows = await self._rows()
        now = time.time()
        if any(row.activates_at > now for row in rows):
            return None
        due = now if not rows else now + self.policy.publish_ahead
        created = await self._create(
            max((r.generation for r in rows), default=0) + 1, due
        )
        self._load(await self._rows(), time.time())
        return self.find(created) if created else None

    def start(self) -> None:
        """Keep the keys current in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self._maintain_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.policy.refresh_interval)
            try:
                await self.maintain()
            except Exception:
                # The keys in memory keep signing; the next round tries again.
                logger.exception("signing key maintenance failed")

    async def _rows(self) -> list[SigningKeyRow]:
        async with self._sessions() as session:
            result = await session.scalars(
                select(SigningKeyRow).order_by(SigningKeyRow.generation)
            )
            return list(result)

    async def _create(self, generation: int, activates_at: float) -> str | None:
        private_key = generate_private_key(self.algorithm)
        members = public_jwk_members(private_key)
        kid = thumbprint(members)
        row = SigningKeyRow(
            kid=kid,
            generation=generation,
            algorithm=self.algorithm,
            public_jwk=json.dumps(members),
            private_key_encrypted=self._encryption.encrypt(
                private_key_pem(private_key), kid=kid
            ),
            created_at=time.time(),
            activates_at=activates_at,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            # Another replica created this generation first; its key is used.
            logger.info(
                "signing key created elsewhere", extra={"generation": generation}
            )
            return None
        logger.info(
            "signing key created",
            extra={"kid": kid, "generation": generation, "activates_at": activates_at},
        )
        return kid

    async def _prune(self, rows: list[SigningKeyRow], now: float) -> None:
        expired = [
            row.kid for row in rows if schedule.is_expired(rows, row, now, self.policy)
        ]
        if not expired:
            return
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(SigningKeyRow).where(SigningKeyRow.kid.in_(expired))
            )
        logger.info("signing keys retired", extra={"kids": expired})

    def _load(self, rows: list[SigningKeyRow], now: float) -> None:
        known = {key.kid: key for key in self._keys}
        loaded = []
        for row in rows:
            if schedule.is_expired(rows, row, now, self.policy):
                continue
            key = known.get(row.kid)
            if key is None:
                pem = self._encryption.decrypt(row.private_key_encrypted, kid=row.kid)
                key = SigningKey(
                    kid=row.kid,
                    algorithm=row.algorithm,
                    generation=row.generation,
                    public_jwk=json.loads(row.public_jwk),
                    activates_at=row.activates_at,
                    created_at=row.created_at,
                    private_key=load_private_key(pem),
                )
            loaded.append(key)
        self._keys = loaded
