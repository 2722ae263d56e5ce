"""Which headers cross the gateway, in each direction.

RFC 9110 section 7.6.1: hop-by-hop fields, and every field named in
``Connection``, belong to one connection and are never forwarded. Headers that
an upstream could mistake for an authenticated identity are stripped from
requests, since only the gateway's own checks may vouch for a caller.

``Host``: the upstream receives its own authority (the host and port of its URL
in the route file), and the client's ``Host`` travels in ``X-Forwarded-Host``.
Upstreams behind the gateway are addressed by their internal names, and one
that builds URLs from ``Host`` would otherwise trust a value any client sets;
the platform's services take their public URLs from configuration instead.

``X-Forwarded-For``, ``-Proto`` and ``-Host`` are rebuilt: an inbound value is
believed, and extended, only when the peer is one of the trusted proxies, so a
client cannot choose the address that rate limits and logs see.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Identity assertions some upstream frameworks trust blindly.
IMPERSONATING = frozenset(
    {
        b"x-user",
        b"x-user-id",
        b"x-forwarded-user",
        b"x-forwarded-email",
        b"x-forwarded-preferred-username",
        b"x-forwarded-access-token",
        b"x-forwarded-groups",
        b"x-auth-request-user",
        b"x-auth-request-email",
        b"x-auth-request-access-token",
        b"x-auth-request-groups",
        b"x-remote-user",
        b"remote-user",
        b"x-authenticated-userid",
        b"x-authenticated-user",
        b"x-consumer-id",
        b"x-consumer-username",
        b"x-consumer-custom-id",
        b"x-credential-identifier",
        b"x-client-id",
        b"x-subject",
        b"x-scope",
        b"x-scopes",
        b"x-jwt-claims",
        b"x-jwt-payload",
        b"x-userinfo",
        b"x-ms-client-principal",
        b"x-ms-client-principal-id",
        b"x-ms-client-principal-name",
        b"x-goog-authenticated-user-email",
        b"x-goog-authenticated-user-id",
        b"x-amzn-oidc-identity",
        b"x-amzn-oidc-data",
        b"x-amzn-oidc-accesstoken",
    }
)

# Rebuilt by the gateway rather than passed along.
REBUILT = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-real-ip",
        b"forwarded",
        b"x-request-id",
    }
)

# Computed once: the request path checks each header against one set.
DROPPED_REQUEST = HOP_BY_HOP | IMPERSONATING | REBUILT
# The gateway stamps its own Date; two would contradict each other.
DROPPED_RESPONSE = HOP_BY_HOP | {b"x-request-id", b"date", b"server"}

Network = IPv4Network | IPv6Network


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The field names listed in ``Connection`` headers, lowered."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    named.discard(b"")
    return frozenset(named)


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs or single addresses, as networks."""
    return tuple(ip_network(entry, strict=False) for entry in entries)


def is_trusted(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether ``address`` belongs to one of the trusted proxy ``networks``."""
    if address is None:
        return False
    try:
        parsed = ip_address(address.strip())
    except ValueError:
        return False
    return any(parsed in network for network in networks)


@dataclass(slots=True)
class OutboundRequest:
    """What the gateway learnt from a request's headers in its one pass over them.

    ``content_length`` is None when absent, -1 when not a number.
    """

    headers: list[tuple[str, str]]
    client_address: str | None
    authorization: bytes | None
    content_length: int | None
    chunked: bool
    header_bytes: int


class Forwarding:
    """Builds upstream request headers, trusting ``trusted_proxies`` only."""

    def __init__(self, trusted_proxies: Sequence[Network]) -> None:
        self.trusted_proxies = tuple(trusted_proxies)
        # Peers are few (clients, or the ingress' pods): remember the verdicts.
        self._is_trusted = lru_cache(maxsize=4096)(self._check)

    def _check(self, address: str) -> bool:
        return is_trusted(address, self.trusted_proxies)

    def outbound(
        self,
        inbound: Sequence[tuple[bytes, bytes]],
        *,
        peer: str | None,
        scheme: str,
        request_id: str,
    ) -> OutboundRequest:
        """The request to send upstream for one that arrived with ``inbound``.

        ASGI servers give header names lowered, as this relies on.
        """
        trusted = peer is not None and self._is_trusted(peer)
        dropped = DROPPED_REQUEST
        forwarded_for: list[str] = []
        forwarded_proto = scheme
        forwarded_host = ""
        authorization = None
        content_length = None
        chunked = False
        size = 0
        outbound: list[tuple[str, str]] = []
        for name, raw_value in inbound:
            size += len(name) + len(raw_value)
            if name in dropped:
                if name == b"connection":
                    dropped = dropped | connection_named([(name, raw_value)])
                elif name == b"host":
                    if not forwarded_host:
                        forwarded_host = raw_value.decode("latin-1")
                elif name == b"transfer-encoding":
                    chunked = True
                elif trusted and name == b"x-forwarded-for":
                    forwarded_for.append(raw_value.decode("latin-1"))
                elif trusted and name == b"x-forwarded-proto":
                    forwarded_proto = raw_value.decode("latin-1")
                elif trusted and name == b"x-forwarded-host":
                    forwarded_host = raw_value.decode("latin-1")
                continue
            if name == b"authorization":
                # Two credentials are one too many (RFC 6750 section 3.1,
                # invalid_request): joined, they fail the bearer syntax.
                authorization = (
                    raw_value
                    if authorization is None
                    else authorization + b", " + raw_value
                )
            elif name == b"content-length":
                content_length = int(raw_value) if raw_value.isdigit() else -1
            outbound.append((name.decode("latin-1"), raw_value.decode("latin-1")))

        if dropped is not DROPPED_REQUEST:
            # A Connection header listed fields that came before it.
            outbound = [
                (name, value)
                for name, value in outbound
                if name.encode("latin-1") not in dropped
            ]
        client_address = peer
        if trusted and forwarded_for:
            client_address = self._original_client(forwarded_for, peer)
        if peer is not None:
            forwarded_for.append(peer)
        if forwarded_for:
            outbound.append(("X-Forwarded-For", ", ".join(forwarded_for)))
        outbound.append(("X-Forwarded-Proto", forwarded_proto))
        if forwarded_host:
            outbound.append(("X-Forwarded-Host", forwarded_host))
        outbound.append(("X-Request-ID", request_id))
        return OutboundRequest(
            outbound, client_address, authorization, content_length, chunked, size
        )

    def _original_client(
        self, forwarded_for: list[str], peer: str | None
    ) -> str | None:
        # The rightmost address no trusted proxy vouches for: everything left
        # of it was written by the client and proves nothing.
        for entry in reversed(", ".join(forwarded_for).split(",")):
            address = entry.strip()
            if address and not self._is_trusted(address):
                return address
        return peer


def response_headers(
    upstream: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers that the client may see."""
    kept: list[tuple[bytes, bytes]] = []
    named: frozenset[bytes] | None = None
    for name, value in upstream:
        lowered = name.lower()
        if lowered in DROPPED_RESPONSE:
            if lowered == b"connection":
                named = (named or frozenset()) | connection_named([(name, value)])
            continue
        kept.append((name, value))
    if named:
        kept = [(name, value) for name, value in kept if name.lower() not in named]
    return kept
