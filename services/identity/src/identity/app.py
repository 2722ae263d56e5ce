"""Builds the identity application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from identity import __version__
from identity.settings import Settings
from servicekit.application import service_app
from servicekit.database import create_engine, ping


def create_app(settings: Settings) -> FastAPI:
    """The identity ASGI application for ``settings``."""
    engine = create_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            await engine.dispose()

    async def database_answers() -> None:
        await ping(engine)

    return service_app(
        title="identity",
        version=__version__,
        description="OAuth 2.1 and OpenID Connect provider of the platform.",
        lifespan=lifespan,
        readiness={"database": database_answers},
    )
