"""Authentication at the gateway: bearer tokens checked before a request leaves.

Tokens are verified by the platform's shared :class:`TokenVerifier` (JWKS
prefetched at start-up, refreshed after its TTL, one shared refetch on an
unknown ``kid`` with a cooldown, the last good keys kept when identity is
unreachable). On top of it sits a bounded cache of verified tokens: a client
sends the same token with every request, and a repeated token costs a hash and
a dict lookup instead of an RSA signature check.

The cache is keyed by the SHA-256 of the token, so the gateway's memory holds
no usable credential, and an entry lives no longer than its token (``exp``).
A key removed from the JWKS does not evict the tokens it signed: they stay
accepted until they expire, which is what identity's rotation (keys retired
only after the tokens they signed) already allows.

Refusals follow RFC 6750 section 3: 401 with ``error="invalid_token"`` for a
missing, malformed or rejected token (no error code when there was none,
section 3.1), 400 ``invalid_request`` for an ``Authorization`` header that is
not a bearer token, 403 ``insufficient_scope`` naming the scopes needed.
"""

import hashlib
import logging
import time
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway import metrics
from gateway.errors import BadRequest, Forbidden, ServiceUnavailable, Unauthorized
from servicekit.jwks import JwksCache
from servicekit.tokens import (
    AccessToken,
    InvalidRequest,
    InvalidToken,
    KeysUnavailable,
    TokenVerifier,
    bearer_token,
    www_authenticate,
)

logger = logging.getLogger(__name__)

REALM = "gateway"
DEFAULT_CACHE_SIZE = 10_000
# Far above any real token (identity's are about 1 KB); a longer value is
# refused before it costs a base64 decode.
MAX_TOKEN_BYTES = 16 * 1024


class AuthPolicy(BaseModel):
    """The ``auth`` block of a route: omitted, or required with scopes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = Field(False, description="Whether a bearer token is needed.")
    scopes: tuple[str, ...] = Field((), description="Scopes the token must carry.")
    audience: str | None = Field(None, description="The API the token must name.")

    @model_validator(mode="after")
    def _audience_when_required(self) -> "AuthPolicy":
        if self.required and not self.audience:
            raise ValueError(
                "audience is required when auth is required "
                "(the API identifier the token's aud must contain, e.g. 'orders')"
            )
        if not self.required and (self.scopes or self.audience):
            raise ValueError("scopes and audience need required: true")
        return self


class VerifiedTokens:
    """Tokens verified before, by the hash of the token, until they expire."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[bytes, AccessToken] = {}

    def get(self, digest: bytes, now: float) -> AccessToken | None:
        token = self._entries.get(digest)
        if token is None:
            return None
        if token.expires_at <= now:
            del self._entries[digest]
            return None
        return token

    def put(self, digest: bytes, token: AccessToken) -> None:
        if len(self._entries) >= self.max_entries:
            # Insertion order: the oldest entry goes first, without the cost
            # of an LRU's reordering on every hit.
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = token

    def __len__(self) -> int:
        return len(self._entries)


def _challenge(
    error: str | None = None, description: str | None = None, scope: str | None = None
) -> list[tuple[bytes, bytes]]:
    value = www_authenticate(
        realm=REALM, error=error, description=description, scope=scope
    )
    return [(b"www-authenticate", value.encode("latin-1", "replace"))]


class Authenticator:
    """Checks bearer tokens for the audiences the route table names."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audiences: Iterable[str],
        cache_size: int = DEFAULT_CACHE_SIZE,
        jwks_ttl_seconds: float = 300,
        refetch_cooldown_seconds: float = 10,
    ) -> None:
        self._verifiers: dict[str, TokenVerifier] = {}
        self._caches: dict[str, VerifiedTokens] = {}
        self._spare_caches: list[JwksCache] = []
        shared: JwksCache | None = None
        for audience in sorted(set(audiences)):
            verifier = TokenVerifier(
                jwks_url=jwks_url,
                issuer=issuer,
                audience=audience,
                jwks_ttl_seconds=jwks_ttl_seconds,
                refetch_cooldown_seconds=refetch_cooldown_seconds,
                on_jwks_refresh=_count_refresh,
            )
            if shared is None:
                shared = verifier.jwks
            else:
                # One key set for every audience: one fetch, one cooldown. The
                # verifier's own cache is closed in start(), inside the loop.
                self._spare_caches.append(verifier.jwks)
                verifier.jwks = shared
            self._verifiers[audience] = verifier
            self._caches[audience] = VerifiedTokens(cache_size)

    @property
    def ready(self) -> bool:
        """Whether the issuer's keys have been fetched once."""
        return all(verifier.ready for verifier in self._verifiers.values())

    async def start(self) -> None:
        """Close the spare key caches and fetch the keys once."""
        for spare in self._spare_caches:
            await spare.close()
        self._spare_caches.clear()
        first = next(iter(self._verifiers.values()), None)
        if first is not None:
            await first.start()

    async def close(self) -> None:
        first = next(iter(self._verifiers.values()), None)
        if first is not None:
            await first.close()

    async def authenticate(
        self, authorization: bytes | None, policy: AuthPolicy
    ) -> AccessToken:
        """The caller's verified token, or the RFC 6750 refusal to answer with."""
        if authorization is None:
            _reject("missing")
            raise Unauthorized(
                "This route needs a bearer token in the Authorization header.",
                headers=_challenge(),
            )
        if len(authorization) > MAX_TOKEN_BYTES:
            _reject("malformed")
            raise BadRequest(
                f"The Authorization header is longer than {MAX_TOKEN_BYTES} bytes.",
                headers=_challenge("invalid_request", "the header is too long"),
            )
        try:
            token = bearer_token(authorization.decode("latin-1"))
        except InvalidRequest as exc:
            _reject("malformed")
            raise BadRequest(
                f"The Authorization header is not a bearer token: {exc.description}.",
                headers=_challenge("invalid_request", exc.description),
            ) from exc
        if token is None:  # pragma: no cover - bearer_token only returns None for None
            raise Unauthorized("No bearer token.", headers=_challenge())

        audience = policy.audience or ""
        verified = await self._verify(audience, token)
        if not verified.has_scopes(policy.scopes):
            _reject("insufficient_scope")
            needed = " ".join(policy.scopes)
            raise Forbidden(
                f"The token lacks a scope this route needs: {needed}.",
                headers=_challenge(
                    "insufficient_scope", "the token lacks a required scope", needed
                ),
            )
        return verified

    async def _verify(self, audience: str, token: str) -> AccessToken:
        cache = self._caches[audience]
        digest = hashlib.sha256(token.encode("ascii")).digest()
        now = time.time()
        cached = cache.get(digest, now)
        if cached is not None:
            return cached

        try:
            verified = await self._verifiers[audience].verify(token)
        except KeysUnavailable as exc:
            _reject("keys_unavailable")
            # Not a 401: the token may be fine, the gateway cannot tell yet.
            raise ServiceUnavailable(
                "The gateway has not obtained the issuer's keys yet; retry shortly.",
                headers=[(b"retry-after", b"2")],
            ) from exc
        except InvalidToken as exc:
            _reject("invalid_token")
            raise Unauthorized(
                f"The bearer token was rejected: {exc.description}.",
                headers=_challenge("invalid_token", exc.description),
            ) from exc
        cache.put(digest, verified)
        return verified


def _reject(reason: str) -> None:
    metrics.TOKEN_REJECTIONS.labels(reason).inc()


def _count_refresh(outcome: str) -> None:
    metrics.JWKS_REFRESHES.labels(outcome).inc()
