"""Forwarding a request to its upstream and streaming the answer back.

Bodies flow through in chunks in both directions and are never held whole.
Bytes are passed as received: the upstream client does not decompress, so
``Content-Encoding`` and ``Content-Length`` stay true.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import aiohttp
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.headers import Network, request_headers, response_headers
from gateway.routing import Route, RouteTable
from servicekit import context
from servicekit.problems import PROBLEM_MEDIA_TYPE, problem_body

logger = logging.getLogger(__name__)

# Shorter than the upstreams' keep-alive timeout (15 s in servicekit.server), so
# the gateway never sends a request on a connection the upstream is closing.
POOL_IDLE_SECONDS = 4.0


def new_upstream_session() -> aiohttp.ClientSession:
    """A pooled client session for talking to upstreams."""
    connector = aiohttp.TCPConnector(
        limit=0, keepalive_timeout=POOL_IDLE_SECONDS, enable_cleanup_closed=True
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        # Upstreams see the client's own headers, not the gateway's defaults.
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=60, connect=5, sock_read=30),
        trust_env=False,
    )


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError("client disconnected")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def send_problem(send: Send, status: int, detail: str) -> None:
    """Answer with a problem+json document."""
    body = orjson.dumps(problem_body(status, detail))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _has_body(scope: Scope) -> bool:
    return any(
        name in (b"content-length", b"transfer-encoding") and value not in (b"0",)
        for name, value in scope["headers"]
    )


class Proxy:
    """Forwards requests along the route table over pooled connections."""

    def __init__(self, table: RouteTable, trusted_proxies: Sequence[Network]) -> None:
        self.table = table
        self.trusted_proxies = trusted_proxies
        self._session: aiohttp.ClientSession | None = None

    async def forward(
        self, route: Route, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Send the request upstream and stream the upstream's answer back."""
        if self._session is None:
            # Created on first use, inside the running event loop.
            self._session = new_upstream_session()

        upstream = self.table.upstreams[route.upstream]
        target = str(upstream.url).rstrip("/") + route.upstream_path(scope["path"])
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        client = scope.get("client")
        headers = request_headers(
            scope["headers"],
            client=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
            trusted_proxies=self.trusted_proxies,
            request_id=context.request_id.get() or "",
        )

        try:
            async with self._session.request(
                scope["method"],
                target,
                headers=headers,
                data=_request_body(receive) if _has_body(scope) else None,
                allow_redirects=False,
                compress=None,
            ) as upstream_response:
                await send(
                    {
                        "type": "http.response.start",
                        "status": upstream_response.status,
                        "headers": response_headers(upstream_response.raw_headers),
                    }
                )
                async for chunk in upstream_response.content.iter_any():
                    await send(
                        {"type": "http.response.body", "body": chunk, "more_body": True}
                    )
                await send({"type": "http.response.body", "body": b""})
        except TimeoutError:
            logger.warning("upstream timed out", extra={"upstream": route.upstream})
            await send_problem(
                send, 504, f"The upstream {route.upstream!r} did not answer in time."
            )
        except aiohttp.ClientError as exc:
            logger.warning(
                "upstream failed",
                extra={"upstream": route.upstream, "error": repr(exc)},
            )
            await send_problem(
                send, 502, f"The upstream {route.upstream!r} could not be reached."
            )

    async def close(self) -> None:
        """Close pooled upstream connections."""
        if self._session is not None:
            await self._session.close()


class ProxyMiddleware:
    """Sends requests that match a route upstream; others go to the app."""

    def __init__(self, app: ASGIApp, *, proxy: Proxy) -> None:
        self.app = app
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http":
            route = self.proxy.table.route_for(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return

        scope["route"] = route
        await self.proxy.forward(route, scope, receive, send)
