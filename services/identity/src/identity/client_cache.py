"""Recent successful client authentications, kept in memory for a few seconds.

See :mod:`identity.api.client_authentication` for why and what it costs.
"""

import hashlib
import time

from identity.domain.clients import Client

_MAX_ENTRIES = 10_000


class ClientAuthenticationCache:
    """Recent successful client authentications, by client and secret digest."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[tuple[str, bytes], tuple[float, Client]] = {}

    @staticmethod
    def _key(client_id: str, secret: str) -> tuple[str, bytes]:
        return client_id, hashlib.sha256(secret.encode()).digest()

    def get(self, client_id: str, secret: str) -> Client | None:
        entry = self._entries.get(self._key(client_id, secret))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, client_id: str, secret: str, client: Client) -> None:
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[self._key(client_id, secret)] = (
            time.monotonic() + self.ttl_seconds,
            client,
        )

    def forget(self, client_id: str) -> None:
        for key in [key for key in self._entries if key[0] == client_id]:
            del self._entries[key]
