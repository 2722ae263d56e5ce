"""Which headers cross the gateway, in each direction.

RFC 9110 section 7.6.1: hop-by-hop fields, and every field named in
``Connection``, belong to one connection and are never forwarded. Headers that
an upstream could mistake for an authenticated identity are stripped from
requests, since only the gateway's own checks may vouch for a caller.
"""

from collections.abc import Iterable, Sequence
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
        b"x-auth-request-user",
        b"x-auth-request-email",
        b"x-auth-request-access-token",
        b"x-remote-user",
        b"remote-user",
        b"x-authenticated-userid",
        b"x-consumer-id",
        b"x-consumer-username",
        b"x-client-id",
        b"x-subject",
        b"x-scope",
        b"x-scopes",
    }
)

# Rebuilt by the gateway rather than passed along.
REBUILT = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
    }
)

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
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def request_headers(
    inbound: Sequence[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    trusted_proxies: Sequence[Network],
    request_id: str,
) -> list[tuple[str, str]]:
    """The headers to send upstream for a request that arrived with ``inbound``.

    ``X-Forwarded-For`` is extended only when the peer is a trusted proxy; from
    anyone else an inbound value is discarded, so a client cannot choose the
    address that rate limits and logs see.
    """
    dropped = HOP_BY_HOP | IMPERSONATING | REBUILT | connection_named(inbound)
    dropped |= {b"x-request-id"}
    trusted = is_trusted(client, trusted_proxies)

    forwarded_for: list[str] = []
    forwarded_proto = scheme
    forwarded_host = ""
    outbound: list[tuple[str, str]] = []
    for raw_name, raw_value in inbound:
        name = raw_name.lower()
        value = raw_value.decode("latin-1")
        if name == b"host":
            forwarded_host = value
        elif trusted and name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif trusted and name == b"x-forwarded-proto":
            forwarded_proto = value
        if name not in dropped:
            outbound.append((raw_name.decode("latin-1"), value))

    if client is not None:
        forwarded_for.append(client)
    if forwarded_for:
        outbound.append(("X-Forwarded-For", ", ".join(forwarded_for)))
    outbound.append(("X-Forwarded-Proto", forwarded_proto))
    if forwarded_host:
        outbound.append(("X-Forwarded-Host", forwarded_host))
    outbound.append(("X-Request-ID", request_id))
    return outbound


def response_headers(
    upstream: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers that the client may see."""
    pairs = list(upstream)
    # The gateway stamps its own Date; two would contradict each other.
    dropped = HOP_BY_HOP | connection_named(pairs) | {b"x-request-id", b"date"}
    return [(name, value) for name, value in pairs if name.lower() not in dropped]
