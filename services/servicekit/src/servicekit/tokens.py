"""Verifying RFC 9068 JWT access tokens, shared by the gateway and orders.

Both resource servers verify every token themselves with this one
implementation, against identity's JWKS (see :mod:`servicekit.jwks`). The rules,
from RFC 9068 section 4 and RFC 8725:

- the header's ``alg`` is one of a fixed allow-list of asymmetric algorithms,
  never ``none`` and never HMAC, and it must match the key's algorithm;
- ``typ`` is ``at+jwt`` (an ID token or any other JWT is not an access token);
- the signature verifies with the key named by ``kid``;
- ``iss`` is the configured issuer exactly, ``aud`` contains this API,
  ``exp`` is in the future and ``nbf``/``iat`` are not, with a small leeway.
"""

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from servicekit.jwks import JwksCache, RefreshListener

logger = logging.getLogger(__name__)

DEFAULT_ALGORITHMS = ("RS256", "ES256")
DEFAULT_JWKS_TIMEOUT_SECONDS = 5.0
_SAFE_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384"})
# RFC 9068 section 4; "application/at+jwt" is the same media type spelled in full.
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})

# RFC 6750 section 2.1: b64token, after the case-insensitive "Bearer" scheme.
# Two patterns: with the whole match case-insensitive, matching the token's
# characters cost about 6 times as much (11 us against 2 us for a 900-byte
# token, measured here), and only the scheme is case-insensitive.
_BEARER_SCHEME = re.compile(r"(?i)bearer +")
_B64TOKEN = re.compile(r"([A-Za-z0-9\-._~+/]+=*) *")


class InvalidRequest(Exception):
    """The request carries credentials in a form RFC 6750 does not allow."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class MalformedAuthorization(InvalidRequest):
    """The ``Authorization`` header is present but not ``Bearer <token>``."""


class InvalidToken(Exception):
    """The token cannot be accepted; ``description`` is safe to show the client."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class KeysUnavailable(InvalidToken):
    """No key could be had to check the token: identity's JWKS never arrived."""


@dataclass(frozen=True)
class AccessToken:
    """A verified access token's claims, with the ones every API uses named."""

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issuer: str
    expires_at: int
    token_id: str | None
    claims: Mapping[str, Any] = field(repr=False)
    key_id: str = field(default="", repr=False)
    """The ``kid`` of the key that verified the token (from its header)."""

    def has_scopes(self, required: Iterable[str]) -> bool:
        """Whether every scope in ``required`` was granted."""
        return self.scopes.issuperset(required)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, None when there is none."""
    if authorization is None:
        return None
    scheme = _BEARER_SCHEME.match(authorization)
    matched = scheme and _B64TOKEN.fullmatch(authorization, scheme.end())
    if not matched:
        raise MalformedAuthorization(
            "the Authorization header must be 'Bearer <token>' (RFC 6750 section 2.1)"
        )
    return matched.group(1)


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def www_authenticate(
    *,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
    realm: str | None = None,
) -> str:
    """A ``WWW-Authenticate`` challenge per RFC 6750 section 3."""
    parameters = [
        f"{name}={_quoted(value)}"
        for name, value in (
            ("realm", realm),
            ("error", error),
            ("error_description", description),
            ("scope", scope),
        )
        if value is not None
    ]
    return "Bearer " + ", ".join(parameters) if parameters else "Bearer"


def _audience(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(a for a in aud if isinstance(a, str))
    return ()


def _describe(exc: InvalidTokenError, issuer: str) -> str:
    """What was wrong with the token, in words a client developer can act on."""
    if isinstance(exc, ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, ImmatureSignatureError):
        return "the token is not valid yet"
    if isinstance(exc, InvalidAudienceError):
        return "the token is not meant for this API (aud)"
    if isinstance(exc, InvalidIssuerError):
        return f"the token was not issued by {issuer}"
    if isinstance(exc, MissingRequiredClaimError):
        return f"the token has no {exc.claim!r} claim"
    if isinstance(exc, InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(exc, DecodeError):
        return "the token is not a well-formed JWT"
    return "the token is not valid"


class TokenVerifier:
    """Verifies access tokens issued by one issuer for one audience."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        typ: str = "at+jwt",
        leeway_seconds: float = 30,
        jwks_ttl_seconds: float = 300,
        refetch_cooldown_seconds: float = 10,
        http_timeout_seconds: float = DEFAULT_JWKS_TIMEOUT_SECONDS,
        on_jwks_refresh: RefreshListener | None = None,
        cache_size: int = 0,
        jwks: JwksCache | None = None,
    ) -> None:
        """``cache_size`` > 0 remembers that many verified tokens (see :meth:`verify`).

        ``jwks`` shares a key cache between verifiers of one issuer (one per
        audience): one fetch, one refetch cooldown. Its owner closes it; this
        verifier's :meth:`close` closes only the cache it made itself.
        """
        unsafe = set(algorithms) - _SAFE_ALGORITHMS
        if unsafe:
            raise ValueError(
                f"algorithms {sorted(unsafe)} are not allowed; "
                f"choose among {sorted(_SAFE_ALGORITHMS)}"
            )
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.typ = typ
        self.leeway_seconds = leeway_seconds
        self._owns_jwks = jwks is None
        self.jwks = jwks or JwksCache(
            jwks_url,
            algorithms=self.algorithms,
            ttl_seconds=jwks_ttl_seconds,
            refetch_cooldown_seconds=refetch_cooldown_seconds,
            http_timeout_seconds=http_timeout_seconds,
            on_refresh=on_jwks_refresh,
        )
        self._decoder = jwt.PyJWT()
        self.cache_size = cache_size
        # Keyed by the token's SHA-256, so that memory holds no usable
        # credential: a heap dump of the process yields no bearer token.
        self._verified: dict[bytes, tuple[str, AccessToken]] = {}
        self._retry_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Whether keys have been fetched, so that tokens can be verified."""
        return self.jwks.has_keys

    async def start(self, retry_seconds: float = 2.0) -> None:
        """Fetch the keys once; if that fails keep trying in the background."""
        await self.jwks.refresh()
        if not self.jwks.has_keys:
            self._retry_task = asyncio.create_task(
                self._fetch_until_ready(retry_seconds)
            )

    async def _fetch_until_ready(self, retry_seconds: float) -> None:
        delay = retry_seconds
        while not self.jwks.has_keys:
            await asyncio.sleep(delay)
            await self.jwks.refresh()
            delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
        if self._owns_jwks:
            await self.jwks.close()

    async def verify(self, token: str) -> AccessToken:
        """The verified token, or :class:`InvalidToken` saying what is wrong.

        With a cache, a token verified before is answered from memory while it
        is unexpired and its key is still published: the signature and claims
        of a given string cannot change, so only time and key removal matter.
        """
        if self.cache_size > 0:
            digest = hashlib.sha256(token.encode()).digest()
            remembered = self._remembered(digest)
            if remembered is not None:
                return remembered
            verified = await self._verify(token)
            self._remember(digest, verified)
            return verified
        return await self._verify(token)

    def _remembered(self, digest: bytes) -> AccessToken | None:
        entry = self._verified.get(digest)
        if entry is None:
            return None
        kid, verified = entry
        # The same leeway as pyjwt's exp check, so caching never extends a life.
        if time.time() >= verified.expires_at + self.leeway_seconds or not (
            self.jwks.knows(kid)
        ):
            del self._verified[digest]
            return None
        return verified

    def _remember(self, digest: bytes, verified: AccessToken) -> None:
        if len(self._verified) >= self.cache_size:
            # Oldest first (dicts keep insertion order): a bounded memory cost
            # whatever number of distinct tokens arrives.
            del self._verified[next(iter(self._verified))]
        self._verified[digest] = (verified.key_id, verified)

    async def _verify(self, token: str) -> AccessToken:
        try:
            header = jwt.get_unverified_header(token)
        except DecodeError as exc:
            raise InvalidToken("the token is not a well-formed JWT") from exc

        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise InvalidToken(
                f"the token's algorithm {algorithm!r} is not accepted; "
                f"expected one of {list(self.algorithms)}"
            )
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken(f"the token's type {typ!r} is not 'at+jwt' (RFC 9068)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no key (kid)")

        key = await self.jwks.key_for(kid)
        if key is None:
            if not self.jwks.has_keys:
                raise KeysUnavailable("the issuer's keys are not available yet")
            raise InvalidToken(
                f"the token's key {kid!r} is not one of the issuer's keys"
            )
        if key.algorithm_name != algorithm:
            raise InvalidToken(
                f"the token's algorithm {algorithm!r} does not match its key's"
            )

        try:
            claims = self._decoder.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except InvalidTokenError as exc:
            raise InvalidToken(_describe(exc, self.issuer)) from exc

        scope = claims.get("scope", "")
        return AccessToken(
            subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
            client_id=(
                claims.get("client_id")
                if isinstance(claims.get("client_id"), str)
                else None
            ),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            audience=_audience(claims),
            issuer=claims["iss"],
            expires_at=int(claims["exp"]),
            token_id=claims.get("jti") if isinstance(claims.get("jti"), str) else None,
            claims=claims,
            key_id=kid,
        )
