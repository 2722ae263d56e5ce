"""The FastAPI application every service starts from.

Problem details for every error, request ids and the access log, and the health
endpoints are the same in all services; a service adds its routers to what
:func:`service_app` returns.
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings
from starlette.middleware import Middleware

from servicekit.health import ReadinessCheck, health_router
from servicekit.problems import install_problem_handlers
from servicekit.requests import RequestContextMiddleware

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


class ServiceSettings(BaseSettings):
    """Settings every service has; each service adds its own and its prefix."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(ge=1, le=65535, description="Port to listen on.")
    log_level: str = Field(
        "INFO",
        pattern=r"(?i)^(debug|info|warning|error)$",
        description="Lowest level logged.",
    )
    trusted_proxies: list[str] = Field(
        default=["127.0.0.1"],
        description="Addresses or CIDRs whose X-Forwarded-For is believed.",
    )
    graceful_shutdown_seconds: int = Field(
        20, gt=0, description="How long in-flight requests may run after SIGTERM."
    )


def service_app(
    *,
    title: str,
    version: str,
    description: str,
    lifespan: Lifespan,
    readiness: Mapping[str, ReadinessCheck],
    inner_middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """A FastAPI app with problem details, request ids, access log and health.

    ``inner_middleware`` runs inside the request-id middleware, so what it logs
    and answers carries the request id.
    """
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        # servicekit.telemetry traces requests with the OpenTelemetry ASGI
        # middleware around the app; FastAPI's own spans would duplicate every
        # server span, and its environment auto-configuration would export
        # without servicekit's resource and sampler.
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "auto_configure": False,
        },
    )
    install_problem_handlers(app)
    app.include_router(health_router(readiness))
    for middleware in reversed(inner_middleware):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    app.add_middleware(
        RequestContextMiddleware, skip_access_log=frozenset({"/healthz", "/readyz"})
    )
    return app
