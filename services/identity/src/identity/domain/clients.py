"""OAuth clients (RFC 6749 section 2) and the rules a registration follows."""

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from identity.domain.users import has_control_characters
from identity.errors import InvalidClientRegistration

ClientType = Literal["public", "confidential"]

GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
# RFC 6749 section 2.3.1 and OpenID Connect Core section 9; `none` for public
# clients (RFC 7591 section 2).
AUTH_METHODS = frozenset({"none", "client_secret_basic", "client_secret_post"})
# RFC 6749 Appendix A.1: client_id is VSCHAR; narrower here so that an id is safe
# in a URL path, a log line and a YAML key without quoting.
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,99}")
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_LOOPBACK_HOSTS = frozenset({"localhost"})
# Bounds that keep one registration small; far above what a real client needs.
MAX_URIS = 32
MAX_URI_LENGTH = 2048
MAX_SCOPES = 64
# The API each scope prefix belongs to: a client's default `aud` when its
# registration names none (platform contract: orders is `orders`, identity's
# admin API is `identity`).
SCOPE_AUDIENCES = {"orders": "orders", "users": "identity"}


@dataclass(frozen=True)
class Client:
    """A registered OAuth client."""

    client_id: str
    client_type: ClientType
    name: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]  # authorization_code, refresh_token, client_credentials
    scope: frozenset[str]  # scopes the client may ask for
    audience: tuple[str, ...]  # default `aud` when no `resource` is given
    skip_consent: bool  # first-party clients
    token_endpoint_auth_method: str  # none | client_secret_basic | client_secret_post

    @property
    def is_confidential(self) -> bool:
        return self.client_type == "confidential"


def default_audience(scope: Iterable[str]) -> tuple[str, ...]:
    """The APIs the scopes belong to, e.g. ``orders:read`` -> ``orders``."""
    audiences = {
        SCOPE_AUDIENCES[token.split(":", 1)[0]]
        for token in scope
        if ":" in token and token.split(":", 1)[0] in SCOPE_AUDIENCES
    }
    return tuple(sorted(audiences))


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (RFC 8252 section 7.3)."""
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redirect_uri(field: str, uri: str) -> None:
    """Raise :class:`InvalidClientRegistration` unless ``uri`` may be registered.

    RFC 6749 section 3.1.2 and OAuth 2.1 section 2.3.1: absolute, no fragment;
    https, or http only for a loopback host (RFC 8252 section 7.3), or a
    private-use scheme of a native app in reverse-domain form (section 7.1).
    """
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidClientRegistration(field, f"at most {MAX_URI_LENGTH} characters")
    if has_control_characters(uri) or " " in uri:
        raise InvalidClientRegistration(
            field, f"a URI has no spaces or control characters, got {uri!r}"
        )
    parts = urlsplit(uri)
    if not parts.scheme:
        raise InvalidClientRegistration(field, f"expected an absolute URI, got {uri!r}")
    if parts.fragment or "#" in uri:
        raise InvalidClientRegistration(
            field, f"a redirect URI has no fragment, got {uri!r}"
        )
    if parts.scheme == "https":
        if not parts.hostname:
            raise InvalidClientRegistration(field, f"expected a host in {uri!r}")
        return
    if parts.scheme == "http":
        if not parts.hostname or not is_loopback_host(parts.hostname):
            raise InvalidClientRegistration(
                field,
                f"http is allowed only for localhost or a loopback address, got {uri!r}",
            )
        return
    if "." not in parts.scheme:
        raise InvalidClientRegistration(
            field,
            f"expected https, http on loopback, or a reverse-domain scheme such as "
            f"com.example.app, got {uri!r}",
        )


def check_client(client: Client) -> Client:
    """``client`` if its registration is coherent, else :class:`InvalidClientRegistration`.

    A missing audience is filled in from the scopes (:func:`default_audience`).
    """
    if not _CLIENT_ID.fullmatch(client.client_id):
        raise InvalidClientRegistration(
            "client_id",
            "1 to 100 letters, digits or ._~- starting with a letter or digit, "
            f"got {client.client_id!r}",
        )
    _check_grants(client)
    _check_auth_method(client)
    for field, uris in (
        ("redirect_uris", client.redirect_uris),
        ("post_logout_redirect_uris", client.post_logout_redirect_uris),
    ):
        if len(uris) > MAX_URIS:
            raise InvalidClientRegistration(field, f"at most {MAX_URIS} URIs")
        for index, uri in enumerate(uris):
            check_redirect_uri(f"{field}[{index}]", uri)
    if len(client.scope) > MAX_SCOPES or len(client.audience) > MAX_SCOPES:
        raise InvalidClientRegistration(
            "scope" if len(client.scope) > MAX_SCOPES else "audience",
            f"at most {MAX_SCOPES} values",
        )
    for token in sorted(client.scope):
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidClientRegistration(
                "scope", f"not a scope token (RFC 6749 3.3): {token!r}"
            )
    for token in client.audience:
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidClientRegistration(
                "audience", f"expected an API identifier, got {token!r}"
            )
    if len(client.name) > 200:
        raise InvalidClientRegistration("name", "at most 200 characters")
    if has_control_characters(client.name):
        raise InvalidClientRegistration("name", "no control characters")

    if not client.audience:
        client = replace(client, audience=default_audience(client.scope))
    return client


def _check_grants(client: Client) -> None:
    unknown = client.grant_types - GRANT_TYPES
    if unknown:
        raise InvalidClientRegistration(
            "grant_types",
            f"unknown grant types {sorted(unknown)}; choose among {sorted(GRANT_TYPES)}",
        )
    if not client.grant_types:
        raise InvalidClientRegistration("grant_types", "at least one grant type")
    # OAuth 2.1 section 4.2: client credentials only for confidential clients.
    if "client_credentials" in client.grant_types and not client.is_confidential:
        raise InvalidClientRegistration(
            "grant_types", "client_credentials is only for confidential clients"
        )
    if "authorization_code" in client.grant_types and not client.redirect_uris:
        raise InvalidClientRegistration(
            "redirect_uris", "the authorization_code grant needs a redirect URI"
        )
    if "refresh_token" in client.grant_types and (
        "authorization_code" not in client.grant_types
    ):
        raise InvalidClientRegistration(
            "grant_types", "refresh_token comes with authorization_code"
        )


def _check_auth_method(client: Client) -> None:
    method = client.token_endpoint_auth_method
    if method not in AUTH_METHODS:
        raise InvalidClientRegistration(
            "token_endpoint_auth_method",
            f"expected one of {sorted(AUTH_METHODS)}, got {method!r}",
        )
    if client.is_confidential and method == "none":
        raise InvalidClientRegistration(
            "token_endpoint_auth_method", "a confidential client authenticates"
        )
    if not client.is_confidential and method != "none":
        raise InvalidClientRegistration(
            "token_endpoint_auth_method",
            f"a public client has no secret, so its method is 'none', got {method!r}",
        )
