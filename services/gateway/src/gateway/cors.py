"""CORS at the gateway, for every route and for the gateway's own answers.

Browsers only let a page read a response that carries the CORS headers, error
responses included: a 401 or 429 without them reaches the page as an opaque
network error. So the headers go on everything the gateway sends to an allowed
origin, whatever the status.

Preflights (``OPTIONS`` with ``Access-Control-Request-Method``, Fetch standard
section 3.2) are answered here, before routing, authentication and rate
limiting: a preflight never carries credentials, and spending a client's rate
limit on it would halve the requests a page can make.

Origins are a fixed list, compared as exact strings. A wildcard is refused
because responses allow credentials (the ``Authorization`` header), and the
Fetch standard forbids ``*`` with credentials.
"""

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.problems import PROBLEM_MEDIA_TYPE, problem_body

ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
# Headers a page may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = (
    b"X-Request-ID, RateLimit, RateLimit-Policy, Retry-After, WWW-Authenticate, "
    b"Location, Content-Disposition"
)
PREFLIGHT_MAX_AGE = b"600"
_ACCESS_CONTROL = b"access-control-"


def validate_origins(origins: Iterable[str]) -> list[str]:
    """The origins, or ValueError naming the one that cannot be used."""
    checked = []
    for origin in origins:
        if origin == "*" or "*" in origin:
            raise ValueError(
                f"{origin!r}: wildcards are not allowed, because the gateway "
                "allows credentials; list each origin"
            )
        if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
            raise ValueError(
                f"{origin!r} is not an origin: expected scheme://host[:port] "
                "with no path, e.g. 'https://app.example.com'"
            )
        checked.append(origin)
    return checked


class CorsMiddleware:
    """Answers preflights and adds CORS headers for the configured origins."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Iterable[str],
        route_for: Callable[[str], Any] | None = None,
    ) -> None:
        self.app = app
        self.origins = frozenset(origin.encode("latin-1") for origin in origins)
        # The proxy's route lookup: a preflight never reaches the proxy, yet its
        # access log line, metrics and span must name the route, not "unmatched".
        self.route_for = route_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.origins:
            await self.app(scope, receive, send)
            return

        origin = None
        preflight_method = None
        requested_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value
        if origin is None:
            await self.app(scope, receive, send)
            return

        if scope["method"] == "OPTIONS" and preflight_method is not None:
            route = self.route_for(scope["path"]) if self.route_for else None
            if route is not None:
                scope["route"] = route
            await self._preflight(origin, requested_headers, send)
            return

        if origin not in self.origins:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The gateway's answer replaces an upstream's own: two
                # Access-Control-Allow-Origin values make the browser refuse both.
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if not name.lower().startswith(_ACCESS_CONTROL)
                ]
                headers.extend(_cors_headers(origin))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, origin: bytes, requested_headers: bytes | None, send: Send
    ) -> None:
        if origin not in self.origins:
            body = orjson.dumps(
                problem_body(
                    403,
                    f"The origin {origin.decode('latin-1')!r} may not call this API.",
                )
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        headers = [
            *_cors_headers(origin),
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            (b"content-length", b"0"),
        ]
        if requested_headers:
            # Any request header may be sent: the gateway's hygiene, not the
            # browser, decides which of them reach an upstream.
            headers.append((b"access-control-allow-headers", requested_headers))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _cors_headers(origin: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-credentials", b"true"),
        (b"access-control-expose-headers", EXPOSED_HEADERS),
        # Responses differ by Origin, so caches must key on it (Fetch, CORS protocol).
        (b"vary", b"Origin"),
    ]
