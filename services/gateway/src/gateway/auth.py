"""Authentication at the gateway: bearer tokens checked before a request leaves.

Tokens are verified by the platform's shared :class:`TokenVerifier` (JWKS
prefetched at start-up, refreshed after its TTL, one shared refetch on an
unknown ``kid`` with a cooldown, the last good keys kept when identity is
unreachable), one verifier per audience the routes name, all sharing one key
set. Each keeps a bounded cache of the tokens it verified: a client sends the
same token with every request, and a repeated token costs a hash and a dict
lookup instead of an RSA signature check. The cache is keyed by the token's
SHA-256, so the gateway's memory holds no usable credential; an entry lives no
longer than its token, nor than its key in the JWKS (identity retires a key
only after the tokens it signed have expired, so that happens only when a key
is withdrawn on purpose).

Refusals follow RFC 6750 section 3: 401 with ``error="invalid_token"`` for a
missing, malformed or rejected token (no error code when there was none,
section 3.1), 400 ``invalid_request`` for an ``Authorization`` header that is
not a bearer token, 403 ``insufficient_scope`` naming the scopes needed.
"""

import logging
import re
from collections.abc import Iterable
from functools import cached_property

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gateway import metrics
from gateway.errors import BadRequest, Forbidden, ServiceUnavailable, Unauthorized
from servicekit.jwks import JwksCache
from servicekit.tokens import (
    DEFAULT_ALGORITHMS,
    DEFAULT_JWKS_TIMEOUT_SECONDS,
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
# A request method as registered (RFC 9110 section 16.1): a token, by
# convention in capitals; methods are case-sensitive, so "get" is not GET.
_METHOD = re.compile(r"[A-Z][A-Z-]*")


class AuthPolicy(BaseModel):
    """The ``auth`` block of a route: omitted, or required with scopes.

    ``scopes`` are needed for every request, ``method_scopes`` add more for
    the methods they name (``GET: [orders:read]``, ``POST: [orders:write]``);
    HEAD asks what GET asks unless it is named itself, since it reads the
    same resource (RFC 9110 section 9.3.2).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = Field(False, description="Whether a bearer token is needed.")
    scopes: tuple[str, ...] = Field((), description="Scopes the token must carry.")
    method_scopes: dict[str, tuple[str, ...]] = Field(
        {}, description="More scopes the token must carry, per request method."
    )
    audience: str | None = Field(None, description="The API the token must name.")

    @field_validator("method_scopes")
    @classmethod
    def _request_methods(
        cls, value: dict[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        for method in value:
            if not _METHOD.fullmatch(method):
                raise ValueError(
                    f"{method!r} is not a request method in capitals, "
                    "such as GET or POST"
                )
        return value

    @model_validator(mode="after")
    def _audience_when_required(self) -> "AuthPolicy":
        if self.required and not self.audience:
            raise ValueError(
                "audience is required when auth is required "
                "(the API identifier the token's aud must contain, e.g. 'orders')"
            )
        if not self.required and (self.scopes or self.method_scopes or self.audience):
            raise ValueError("scopes, method_scopes and audience need required: true")
        return self

    @cached_property
    def scopes_by_method(self) -> dict[str, tuple[str, ...]]:
        """The scopes of each method ``method_scopes`` names, worked out once.

        A cached property rather than a pydantic private attribute: those are
        read through the model's ``__getattr__``, about 2.5 us a request.
        """
        by_method = {
            method: tuple(dict.fromkeys(self.scopes + extra))
            for method, extra in self.method_scopes.items()
        }
        if "GET" in by_method and "HEAD" not in by_method:
            by_method["HEAD"] = by_method["GET"]
        return by_method

    def scopes_for(self, method: str) -> tuple[str, ...]:
        """Every scope a ``method`` request on the route needs."""
        return self.scopes_by_method.get(method, self.scopes)


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
        self.jwks = JwksCache(
            jwks_url,
            algorithms=DEFAULT_ALGORITHMS,
            ttl_seconds=jwks_ttl_seconds,
            refetch_cooldown_seconds=refetch_cooldown_seconds,
            http_timeout_seconds=DEFAULT_JWKS_TIMEOUT_SECONDS,
            on_refresh=_count_refresh,
        )
        self._verifiers = {
            audience: TokenVerifier(
                jwks_url=jwks_url,
                issuer=issuer,
                audience=audience,
                cache_size=cache_size,
                jwks=self.jwks,
            )
            for audience in sorted(set(audiences))
        }

    @property
    def ready(self) -> bool:
        """Whether the issuer's keys have been fetched once."""
        return all(verifier.ready for verifier in self._verifiers.values())

    async def start(self) -> None:
        """Fetch the keys once (retried in the background until they come)."""
        first = next(iter(self._verifiers.values()), None)
        if first is not None:
            await first.start()

    async def close(self) -> None:
        for verifier in self._verifiers.values():
            await verifier.close()
        await self.jwks.close()

    async def authenticate(
        self, authorization: bytes | None, policy: AuthPolicy, method: str = "GET"
    ) -> AccessToken:
        """The caller's verified token, or the RFC 6750 refusal to answer with.

        ``method`` is the request's, which chooses the scopes needed.
        """
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
        scopes = policy.scopes_for(method)
        if not verified.has_scopes(scopes):
            _reject("insufficient_scope")
            needed = " ".join(scopes)
            raise Forbidden(
                f"The token lacks a scope this route needs: {needed}.",
                headers=_challenge(
                    "insufficient_scope", "the token lacks a required scope", needed
                ),
            )
        return verified

    async def _verify(self, audience: str, token: str) -> AccessToken:
        try:
            return await self._verifiers[audience].verify(token)
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


def _reject(reason: str) -> None:
    metrics.TOKEN_REJECTIONS.labels(reason).inc()


def _count_refresh(outcome: str) -> None:
    metrics.JWKS_REFRESHES.labels(outcome).inc()
