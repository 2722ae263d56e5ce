"""Password hashing with Argon2id (RFC 9106), off the event loop.

Hashing is deliberately slow (tens of milliseconds, 64 MiB by default), so it
runs in a worker thread: argon2-cffi releases the GIL, and other requests keep
being served meanwhile.
"""

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hashes and verifies passwords with one set of Argon2id parameters."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        # Verified when the e-mail is unknown, so that an unknown account costs
        # the same work as a wrong password and timing tells nothing.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        """A new Argon2id hash of ``password`` in PHC string form."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``None`` verifies against a dummy hash."""
        target = self._dummy_hash if password_hash is None else password_hash
        try:
            matches = await asyncio.to_thread(self._hasher.verify, target, password)
        except (VerificationError, InvalidHashError):
            return False
        return matches and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
