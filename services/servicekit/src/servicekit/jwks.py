"""A JSON Web Key Set fetched from identity, cached, and refreshed with care.

The failure modes this avoids are the ones verifiers are known for: clients that
keep a stale set after a key rotation ("unable to find key with kid"), a storm of
refetches when tokens carry a kid nobody knows, answering 401 because a refresh
failed although the cached keys were fine, and caching an empty set.

- Keys are refreshed in the background once they are older than the TTL; the
  request that notices does not wait.
- An unknown ``kid`` triggers one refetch, shared by every concurrent caller
  (single flight), and then a cooldown during which unknown kids are refused
  without refetching.
- A failed or empty fetch keeps the last good keys.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

logger = logging.getLogger(__name__)

# Members that make a JWK private (RFC 7518 sections 6.2.2 and 6.3.2). A
# verifier never needs them, and must not keep them if a set leaks them.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

# Asymmetric families only: an "oct" key would let a token's signer be anyone
# who knows the (public) set, the classic HS256-with-the-public-key confusion.
_KEY_TYPES_BY_ALGORITHM = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "ES256": "EC",
    "ES384": "EC",
}

MAX_JWKS_BYTES = 1 << 20

RefreshListener = Callable[[str], None]


class JwksFetchError(Exception):
    """The key set could not be fetched or contained no usable key."""


def usable_keys(document: Any, algorithms: Sequence[str]) -> dict[str, PyJWK]:
    """The signing keys of a JWKS document, by kid, that ``algorithms`` can verify."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksFetchError("not a JWK Set: expected an object with a 'keys' array")

    keys: dict[str, PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid, kty = entry.get("kid"), entry.get("kty")
        if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
            continue
        algorithm = entry.get("alg") or _default_algorithm(entry)
        if (
            not isinstance(algorithm, str)
            or algorithm not in algorithms
            or _KEY_TYPES_BY_ALGORITHM.get(algorithm) != kty
        ):
            continue
        public = {k: v for k, v in entry.items() if k not in _PRIVATE_MEMBERS}
        try:
            keys[kid] = PyJWK(public, algorithm)
        except PyJWKError as exc:
            logger.warning("jwks key skipped", extra={"kid": kid, "error": str(exc)})
    return keys


def _default_algorithm(entry: Mapping[str, Any]) -> str | None:
    if entry.get("kty") == "RSA":
        return "RS256"
    if entry.get("kty") == "EC" and entry.get("crv") == "P-256":
        return "ES256"
    return None


class JwksCache:
    """Keys of one JWKS URL, by kid."""

    def __init__(
        self,
        url: str,
        *,
        algorithms: Sequence[str],
        ttl_seconds: float,
        refetch_cooldown_seconds: float,
        http_timeout_seconds: float,
        on_refresh: RefreshListener | None = None,
    ) -> None:
        self.url = url
        self.algorithms = tuple(algorithms)
        self.ttl_seconds = ttl_seconds
        self.refetch_cooldown_seconds = refetch_cooldown_seconds
        self._client = httpx.AsyncClient(
            timeout=http_timeout_seconds,
            follow_redirects=False,
            # Proxy variables meant for outbound traffic must not divert an
            # in-cluster call to identity.
            trust_env=False,
            headers={"Accept": "application/jwk-set+json, application/json"},
        )
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt = float("-inf")
        self._last_unknown_kid_refetch = float("-inf")
        self._in_flight: asyncio.Task[None] | None = None
        self._on_refresh = on_refresh

    @property
    def has_keys(self) -> bool:
        """Whether a set has been fetched at least once."""
        return self._fetched_at is not None

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def knows(self, kid: str) -> bool:
        """Whether ``kid`` is in the current set (no fetch, no allocation)."""
        return kid in self._keys

    async def key_for(self, kid: str) -> PyJWK | None:
        """The key named ``kid``; None if it is unknown even after a refetch."""
        key = self._keys.get(kid)
        if key is not None:
            if self._is_stale():
                self._refresh_in_background()
            return key

        if self._in_flight is not None and not self._in_flight.done():
            # Concurrent callers with the same new kid share the fetch under way.
            await asyncio.shield(self._in_flight)
            return self._keys.get(kid)

        # Tokens naming keys nobody has must not turn into a stream of fetches:
        # one refetch, then unknown kids are refused until the cooldown ends.
        now = time.monotonic()
        if now - self._last_unknown_kid_refetch < self.refetch_cooldown_seconds:
            return None
        self._last_unknown_kid_refetch = now
        await self.refresh()
        return self._keys.get(kid)

    async def refresh(self) -> None:
        """Fetch the set now, joining a fetch already under way; never raises."""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.create_task(self._fetch())
        await asyncio.shield(self._in_flight)

    async def close(self) -> None:
        if self._in_flight is not None and not self._in_flight.done():
            self._in_flight.cancel()
        await self._client.aclose()

    def _is_stale(self) -> bool:
        return (
            self._fetched_at is None
            or time.monotonic() - self._fetched_at > self.ttl_seconds
        )

    def _refresh_in_background(self) -> None:
        if self._in_flight is not None and not self._in_flight.done():
            return
        if time.monotonic() - self._last_attempt < self.refetch_cooldown_seconds:
            return
        self._in_flight = asyncio.create_task(self._fetch())

    async def _fetch(self) -> None:
        self._last_attempt = time.monotonic()
        try:
            keys = await self._download()
        except JwksFetchError as exc:
            # The last good keys stay in use: a verifier that answers 401 because
            # identity was briefly unreachable turns an outage into a logout.
            logger.warning(
                "jwks refresh failed",
                extra={
                    "url": self.url,
                    "error": str(exc),
                    "kept_keys": len(self._keys),
                },
            )
            self._notify("failure")
            return

        added = set(keys) - set(self._keys)
        self._keys = keys
        self._fetched_at = time.monotonic()
        logger.info(
            "jwks refreshed",
            extra={"url": self.url, "keys": len(keys), "added": sorted(added)},
        )
        self._notify("success")

    async def _download(self) -> dict[str, PyJWK]:
        try:
            response = await self._client.get(self.url)
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise JwksFetchError(f"HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksFetchError(f"larger than {MAX_JWKS_BYTES} bytes")
        try:
            document = response.json()
        except ValueError as exc:
            raise JwksFetchError("not JSON") from exc

        keys = usable_keys(document, self.algorithms)
        if not keys:
            # Never cache "no keys": it would refuse every token until the TTL ends.
            raise JwksFetchError(f"no usable key for {list(self.algorithms)}")
        return keys

    def _notify(self, outcome: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(outcome)
