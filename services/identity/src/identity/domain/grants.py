"""Rules of the authorization request and of the grants: pure, no I/O.

Sources: OAuth 2.1 (draft-ietf-oauth-v2-1-16) sections 4.1 and 7.5, RFC 7636
(PKCE), RFC 8252 section 7.3 (loopback redirects), RFC 8707 (resource
indicators), OpenID Connect Core 1.0 section 3.1.2.
"""

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from identity.domain.clients import SCOPE_AUDIENCES, Client, is_loopback_host
from identity.errors import InvalidRequest, InvalidScope, InvalidTarget

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
# RFC 7636 section 4.1: 43 to 128 unreserved characters.
_CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 section 4.2: BASE64URL(SHA256(verifier)) is always 43 characters.
_CODE_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def redirect_uri_matches(registered: Iterable[str], given: str) -> bool:
    """Exact string match; only a loopback URI's port may differ.

    OAuth 2.1 section 2.3.1 / 7.5.1 and RFC 8252 section 7.3: native apps
    listen on an ephemeral port, so ``http://127.0.0.1:{any}/path`` matches a
    registered ``http://127.0.0.1/path`` (and any other port of it).
    """
    if given in registered:
        return True
    parts = urlsplit(given)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if not is_loopback_host(parts.hostname) or parts.hostname == "localhost":
        # RFC 8252 section 8.3: "localhost" is NOT RECOMMENDED; only literal IPs.
        return False
    try:
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    without_port = _without_port(given)
    return any(_without_port(uri) == without_port for uri in registered)


def _without_port(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def check_code_challenge(challenge: str | None, method: str | None) -> str:
    """The S256 challenge, required for every client (OAuth 2.1 section 4.1.1)."""
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE, S256)")
    if method != "S256":
        raise InvalidRequest(
            f"code_challenge_method must be 'S256', got {method!r}; "
            "'plain' is not allowed"
        )
    if not _CODE_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
    return challenge


def verify_code_verifier(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 section 4.6, compared in constant time."""
    if verifier is None or not _CODE_VERIFIER.fullmatch(verifier):
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return hmac.compare_digest(computed.rstrip(b"=").decode(), challenge)


def requested_scope(client: Client, scope: str | None) -> frozenset[str]:
    """The scopes asked for, all of which the client must be allowed.

    RFC 6749 section 3.3: with no ``scope`` the client's registered scopes are
    used.
    """
    if scope is None:
        return client.scope
    asked = frozenset(scope.split())
    unknown = asked - client.scope
    if unknown:
        raise InvalidScope(
            f"the client may not ask for {' '.join(sorted(unknown))!r}; "
            f"allowed: {' '.join(sorted(client.scope))!r}"
        )
    return asked


def narrowed_scope(granted: frozenset[str], scope: str | None) -> frozenset[str]:
    """RFC 6749 section 6: a refresh may ask for less than was granted, never more."""
    if scope is None:
        return granted
    asked = frozenset(scope.split())
    if not asked <= granted:
        raise InvalidScope(
            f"{' '.join(sorted(asked - granted))!r} was not granted; "
            "a refresh may only narrow the scope"
        )
    return asked


def audiences(
    client: Client, scope: frozenset[str], resource: list[str], fallback: str
) -> tuple[str, ...]:
    """The token's ``aud``: the RFC 8707 ``resource`` values, else the default.

    A resource must be one of the APIs the client's scopes belong to, or one of
    its registered audiences (RFC 8707 section 2: ``invalid_target``).
    """
    allowed = set(client.audience) | {
        SCOPE_AUDIENCES[token.split(":", 1)[0]]
        for token in client.scope
        if token.split(":", 1)[0] in SCOPE_AUDIENCES and ":" in token
    }
    if resource:
        unknown = [r for r in resource if r not in allowed]
        if unknown:
            raise InvalidTarget(
                f"resource {unknown[0]!r} is not an API this client may use; "
                f"known: {sorted(allowed)}"
            )
        return tuple(dict.fromkeys(resource))
    by_scope = tuple(
        sorted(
            {
                SCOPE_AUDIENCES[token.split(":", 1)[0]]
                for token in scope
                if ":" in token and token.split(":", 1)[0] in SCOPE_AUDIENCES
            }
        )
    )
    return by_scope or client.audience or (fallback,)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request (OIDC Core section 3.1.2.1)."""

    client_id: str
    redirect_uri: str
    scope: frozenset[str]
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    resource: tuple[str, ...]

    @property
    def is_openid(self) -> bool:
        return "openid" in self.scope


def parse_prompt(prompt: str | None) -> frozenset[str]:
    values = frozenset((prompt or "").split())
    unknown = values - PROMPTS
    if unknown:
        raise InvalidRequest(f"unknown prompt value {sorted(unknown)[0]!r}")
    if "none" in values and len(values) > 1:
        # OIDC Core 3.1.2.1: "none" with any other value is an error.
        raise InvalidRequest("prompt=none cannot be combined with other values")
    return values


def parse_max_age(max_age: str | None) -> int | None:
    if max_age is None:
        return None
    if not max_age.isdigit():
        raise InvalidRequest(f"max_age must be a non-negative integer, got {max_age!r}")
    return int(max_age)


def needs_login(
    request: AuthorizationRequest, auth_time: float | None, now: float
) -> bool:
    """Whether the user must sign in (again) for this request."""
    if auth_time is None or "login" in request.prompt:
        return True
    return request.max_age is not None and now - auth_time > request.max_age
