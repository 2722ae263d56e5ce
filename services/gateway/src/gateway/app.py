"""Builds the gateway application.

Middleware, outermost first: servicekit's request id and access log, CORS (so
that every answer, the gateway's own problems included, carries its headers),
then the proxy, which sends requests that match a route upstream without
touching FastAPI's routing; what no route matches (``/healthz``, ``/readyz``,
unknown paths) falls through to the FastAPI app.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from gateway import __version__
from gateway.auth import Authenticator
from gateway.cors import CorsMiddleware
from gateway.headers import parse_networks
from gateway.proxy import Proxy, ProxyMiddleware
from gateway.rate_limit import RateLimiter
from gateway.routing import load_route_table
from gateway.settings import Settings
from servicekit.application import service_app
from servicekit.health import ReadinessCheck


def create_app(settings: Settings) -> FastAPI:
    """The gateway ASGI application for ``settings``."""
    table = load_route_table(settings.routes_file)
    authenticator = None
    if table.audiences:
        authenticator = Authenticator(
            jwks_url=settings.jwks_url,
            issuer=settings.issuer or "",
            audiences=table.audiences,
            cache_size=settings.token_cache_size,
            jwks_ttl_seconds=settings.jwks_ttl_seconds,
            refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
        )
    limiter = RateLimiter(
        table.rate_limits,
        redis_url=settings.redis_url,
        on_redis_failure=settings.rate_limit_on_redis_failure,
        max_keys=settings.rate_limit_max_keys,
        redis_timeout_seconds=settings.rate_limit_redis_timeout_seconds,
    )
    proxy = Proxy(
        table,
        parse_networks(settings.trusted_proxies),
        authenticator=authenticator,
        limiter=limiter,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        if authenticator is not None:
            # Prefetch: the first token does not wait for the keys, and
            # /readyz says when they are here.
            await authenticator.start()
        try:
            yield
        finally:
            await proxy.close()
            await limiter.close()
            if authenticator is not None:
                await authenticator.close()

    readiness: dict[str, ReadinessCheck] = {}
    if authenticator is not None:
        readiness["jwks"] = _keys_fetched(authenticator)

    return service_app(
        title="gateway",
        version=__version__,
        description="The platform's single entry point.",
        lifespan=lifespan,
        readiness=readiness,
        inner_middleware=[
            Middleware(
                CorsMiddleware,
                origins=settings.cors_origins,
                route_for=proxy.route_for,
            ),
            Middleware(ProxyMiddleware, proxy=proxy),
        ],
    )


def _keys_fetched(authenticator: Authenticator) -> ReadinessCheck:
    async def check() -> None:
        if not authenticator.ready:
            raise RuntimeError("the issuer's JWKS has not been fetched yet")

    return check
