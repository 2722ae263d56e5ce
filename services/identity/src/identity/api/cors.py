"""CORS for the endpoints browsers' JavaScript may call, and for no other.

The token, userinfo, revocation, introspection, JWKS and discovery endpoints
answer configured origins (``IDENTITY_CORS_ORIGINS``). The authorization
endpoint and the login and consent pages never do: they are navigated to, not
fetched, and a cross-origin read of them would help clickjacking and CSRF.
"""

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORS_PATHS = frozenset(
    {
        "/token",
        "/userinfo",
        "/revoke",
        "/introspect",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    }
)


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in CORS_PATHS:
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        allowed = origin is not None and origin in self.origins
        if scope["method"] == "OPTIONS" and allowed:
            await self._preflight(origin or "", scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # Every answer varies by origin, allowed or not, so caches
                # never hand one origin's answer to another.
                headers.append((b"vary", b"Origin"))
                if allowed and origin is not None:
                    headers.append((b"access-control-allow-origin", origin.encode()))
                    headers.append(
                        (b"access-control-expose-headers", b"WWW-Authenticate")
                    )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, origin: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )
        await response(scope, receive, send)
