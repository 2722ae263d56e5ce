"""Minting and checking identity's own JWTs: access tokens and ID tokens.

Access tokens follow RFC 9068 (``typ: at+jwt``); ID tokens OpenID Connect Core
section 2 (``typ: JWT``). Both are signed with the store's active key, taken
from memory, so issuing a token costs one signature and no database query.
"""

import base64
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidTokenError

from identity.keys.store import KeyStore
from servicekit.tokens import AccessToken, InvalidToken

_HASHES = {"RS256": hashlib.sha256, "ES256": hashlib.sha256}


def _base64url(data: bytes) -> bytes:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def left_half_hash(value: str, algorithm: str) -> str:
    """``at_hash`` / ``c_hash``: OpenID Connect Core sections 3.1.3.6 and 3.3.2.11."""
    digest = _HASHES[algorithm](value.encode("ascii")).digest()
    half = digest[: len(digest) // 2]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode()


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_at: int
    expires_in: int
    algorithm: str


class TokenIssuer:
    """Signs tokens for one issuer with the keys of one :class:`KeyStore`."""

    def __init__(
        self,
        keys: KeyStore,
        *,
        issuer: str,
        access_token_lifetime: int,
        id_token_lifetime: int,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.access_token_lifetime = access_token_lifetime
        self.id_token_lifetime = id_token_lifetime
        self._encoder = jwt.PyJWT()
        self._algorithms: dict[str, Algorithm] = get_default_algorithms()
        self._headers: dict[tuple[str, str, str], bytes] = {}

    def _protected_header(self, kid: str, algorithm: str, typ: str) -> bytes:
        """The encoded JOSE header, the same for every token of a key and type."""
        cached = self._headers.get((kid, algorithm, typ))
        if cached is None:
            # Sorted members, as PyJWT writes them.
            header = {"alg": algorithm, "kid": kid, "typ": typ}
            cached = _base64url(orjson.dumps(header, option=orjson.OPT_SORT_KEYS))
            self._headers[(kid, algorithm, typ)] = cached
        return cached

    def _sign(self, claims: dict[str, Any], typ: str) -> tuple[str, str]:
        """The JWS compact serialisation of ``claims`` (RFC 7515 section 7.1).

        Built here rather than by ``jwt.encode``, which serialises the header
        again and goes through its key and option handling for every token:
        on the token endpoint that was as much again as the signature's
        share of the framework's time. The signature itself is PyJWT's
        algorithm (for ES256 it turns the DER signature into R || S).
        """
        key = self.keys.signing_key()
        signing_input = b".".join(
            (
                self._protected_header(key.kid, key.algorithm, typ),
                _base64url(orjson.dumps(claims)),
            )
        )
        signature = self._algorithms[key.algorithm].sign(signing_input, key.private_key)
        token = b".".join((signing_input, _base64url(signature))).decode("ascii")
        return token, key.algorithm

    def access_token(
        self,
        *,
        subject: str,
        client_id: str,
        audience: Iterable[str],
        scope: Iterable[str],
        auth_time: float | None = None,
    ) -> IssuedAccessToken:
        """An RFC 9068 access token (section 2.2 lists the claims)."""
        now = int(time.time())
        audiences = list(audience)
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audiences[0] if len(audiences) == 1 else audiences,
            "client_id": client_id,
            "scope": " ".join(sorted(scope)),
            "iat": now,
            "exp": now + self.access_token_lifetime,
            "jti": jti,
        }
        if auth_time is not None:
            claims["auth_time"] = int(auth_time)
        token, algorithm = self._sign(claims, "at+jwt")
        return IssuedAccessToken(
            token, jti, claims["exp"], self.access_token_lifetime, algorithm
        )

    def id_token(
        self,
        *,
        subject: str,
        client_id: str,
        auth_time: float,
        nonce: str | None,
        access_token: IssuedAccessToken,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """An ID token (OpenID Connect Core section 2) for ``client_id``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "azp": client_id,
            "iat": now,
            "exp": now + self.id_token_lifetime,
            "auth_time": int(auth_time),
            "at_hash": left_half_hash(access_token.token, access_token.algorithm),
            **(extra_claims or {}),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        token, _ = self._sign(claims, "JWT")
        return token

    def _decode(
        self,
        token: str,
        *,
        typ: str,
        audience: str | None,
        verify_exp: bool = True,
    ) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError as exc:
            raise InvalidToken("the token is not a well-formed JWT") from exc
        if str(header.get("typ", "")).lower() not in (typ, f"application/{typ}"):
            raise InvalidToken(f"the token's type is not {typ!r}")
        key = self.keys.find(str(header.get("kid", "")))
        if key is None or header.get("alg") != key.algorithm:
            raise InvalidToken("the token was not signed by one of this issuer's keys")
        try:
            claims: dict[str, Any] = self._encoder.decode(
                token,
                key.private_key.public_key(),
                algorithms=[key.algorithm],
                issuer=self.issuer,
                audience=audience,
                leeway=30,
                options={
                    "require": ["iss", "exp", "iat"],
                    "verify_aud": audience is not None,
                    "verify_exp": verify_exp,
                },
            )
        except InvalidTokenError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from exc
        return claims

    def verify_access_token(
        self, token: str, audience: str | None = None
    ) -> dict[str, Any]:
        """The claims of one of our own access tokens (any audience if None)."""
        return self._decode(token, typ="at+jwt", audience=audience)

    def verify_id_token_hint(self, token: str) -> dict[str, Any]:
        """An ``id_token_hint``'s claims; expiry is not held against it (RP-initiated
        logout section 2 lets a relying party send an expired ID token)."""
        return self._decode(token, typ="jwt", audience=None, verify_exp=False)


class LocalAccessTokens:
    """``app.state.access_tokens``: verifies our tokens for one audience."""

    def __init__(self, issuer: TokenIssuer, audience: str) -> None:
        self._issuer = issuer
        self.audience = audience

    async def verify(self, token: str) -> AccessToken:
        claims = self._issuer.verify_access_token(token, self.audience)
        aud = claims.get("aud")
        scope = claims.get("scope", "")
        return AccessToken(
            subject=claims.get("sub"),
            client_id=claims.get("client_id"),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            audience=(aud,) if isinstance(aud, str) else tuple(aud or ()),
            issuer=claims["iss"],
            expires_at=int(claims["exp"]),
            token_id=claims.get("jti"),
            claims=claims,
        )
