"""Builds the gateway application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from gateway import __version__
from gateway.headers import parse_networks
from gateway.proxy import Proxy, ProxyMiddleware
from gateway.routing import load_route_table
from gateway.settings import Settings
from servicekit.application import service_app


def create_app(settings: Settings) -> FastAPI:
    """The gateway ASGI application for ``settings``."""
    proxy = Proxy(
        load_route_table(settings.routes_file),
        parse_networks(settings.trusted_proxies),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        try:
            yield
        finally:
            await proxy.close()

    return service_app(
        title="gateway",
        version=__version__,
        description="The platform's single entry point.",
        lifespan=lifespan,
        readiness={},
        inner_middleware=[Middleware(ProxyMiddleware, proxy=proxy)],
    )
