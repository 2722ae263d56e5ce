"""Builds the orders application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware

from orders import __version__, metrics
from orders.api.errors import REALM, install_error_handlers
from orders.api.limits import BodySizeLimit
from orders.api.routes import router
from orders.api.schemas import ProblemDocument
from orders.settings import Settings
from orders.storage.orders import OrderStore
from orders.storage.reads import order_reader
from servicekit.application import add_routes, service_app
from servicekit.bearer import BearerAuthentication
from servicekit.database import create_engine, ping
from servicekit.purging import PeriodicPurge
from servicekit.tokens import TokenVerifier


class JwksNotFetched(Exception):
    """identity's keys have not arrived yet, so no token can be verified."""


def _verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(
        jwks_url=settings.jwks_url,
        issuer=settings.issuer,
        audience=settings.audience,
        leeway_seconds=settings.token_leeway_seconds,
        cache_size=settings.token_cache_size,
        on_jwks_refresh=metrics.count_jwks_refresh,
    )


def create_app(settings: Settings) -> FastAPI:
    """The orders ASGI application for ``settings``."""
    engine = create_engine(settings.database_url, sqlite_pool_size=5)
    store = OrderStore(
        engine,
        order_reader(settings.database_url),
        idempotency_key_ttl=timedelta(seconds=settings.idempotency_key_ttl_seconds),
    )
    purge = PeriodicPurge(
        store.purge_idempotency_keys, interval=settings.purge_interval_seconds
    )
    verifier = _verifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = engine
        await store.start()
        await verifier.start()
        purge.start()
        try:
            yield
        finally:
            await purge.stop()
            await verifier.close()
            await store.close()
            await engine.dispose()

    async def database_answers() -> None:
        await ping(engine)

    async def jwks_fetched() -> None:
        if not verifier.ready:
            raise JwksNotFetched(f"no key set from {settings.jwks_url} yet")

    app = service_app(
        title="orders",
        version=__version__,
        description="Protected orders API of the platform.",
        lifespan=lifespan,
        readiness={"database": database_answers, "jwks": jwks_fetched},
        inner_middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
    )
    app.state.bearer = BearerAuthentication(verifier, realm=REALM)
    app.state.store = store
    install_error_handlers(app)
    add_routes(app, router)
    _describe_problems_and_security(app)
    return app


def _describe_problems_and_security(app: FastAPI) -> None:
    """Add the problem schema and the bearer scheme the operations refer to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        problem = ProblemDocument.model_json_schema(
            ref_template="#/components/schemas/{model}", by_alias=True
        )
        schemas.update(problem.pop("$defs", {}))
        schemas["ProblemDocument"] = problem
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        for path, operations in document["paths"].items():
            if path.startswith("/orders"):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
                    _drop_framework_validation_error(operation["responses"])
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_framework_validation_error(responses: dict[str, Any]) -> None:
    """Remove FastAPI's own 422 entry: its schema is not what orders answers.

    Operations that can fail validation declare 422 as a problem themselves.
    """
    content = responses.get("422", {}).get("content", {})
    if "application/json" in content:
        del responses["422"]
