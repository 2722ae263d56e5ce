"""The FastAPI application every service starts from.

Problem details for every error, request ids and the access log, and the health
endpoints are the same in all services; a service adds its routers to what
:func:`service_app` returns.
"""

import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import request_response

from servicekit.health import ReadinessCheck, health_router
from servicekit.metrics import METRICS_PORT_OFFSET, HttpMetrics, http_metrics
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

    @field_validator("port")
    @classmethod
    def _metrics_port_exists(cls, port: int) -> int:
        if port + METRICS_PORT_OFFSET > 65535:
            raise ValueError(
                f"the metrics port is the port + {METRICS_PORT_OFFSET}, so the port "
                f"must be at most {65535 - METRICS_PORT_OFFSET}"
            )
        return port

    @property
    def metrics_port(self) -> int:
        """Where Prometheus scrapes this service: never the public port."""
        return self.port + METRICS_PORT_OFFSET


def service_app(
    *,
    title: str,
    version: str,
    description: str,
    lifespan: Lifespan,
    readiness: Mapping[str, ReadinessCheck],
    inner_middleware: Sequence[Middleware] = (),
    metrics: HttpMetrics | None = None,
) -> FastAPI:
    """A FastAPI app with problem details, request ids, access log and health.

    ``inner_middleware`` runs inside the request-id middleware, so what it logs
    and answers carries the request id. ``metrics`` defaults to the process's
    HTTP metrics in prometheus-client's default registry.
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
        RequestContextMiddleware,
        skip_access_log=frozenset({"/healthz", "/readyz"}),
        metrics=metrics if metrics is not None else http_metrics(),
    )
    return app


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Add the routers' path operations to ``app`` itself, as copies, in order.

    FastAPI's ``include_router`` keeps the router as one nested route and
    works out each of its operations' effective settings while matching
    every request: a sixth of identity's client-credentials request with the
    signature left out (measured in-process: 115 us, 97 us with the routes
    copied). Copying the
    operations, as FastAPI itself did before it kept routers live, matches
    them like routes declared on the app. A router's own prefix, tags or
    dependencies given to ``include_router`` are not supported here; declare
    them on the operations.

    The copies go ahead of the routes already there, those FastAPI and
    :func:`service_app` added (the OpenAPI document, the docs pages, the
    health checks): routes are tried in order, a few microseconds each, and
    those are asked for only now and then. None of their paths may overlap a
    service's. Call it once, with every router, the most requested first.
    """
    builtin = list(app.router.routes)
    del app.router.routes[:]
    for route in [route for router in routers for route in router.routes]:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r} is not a path operation; add it to the app")
        app.router.add_api_route(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            route_class_override=type(route),
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size,
            form_limits=route.form_limits,
        )
    app.router.routes.extend(builtin)


class RequestRoute(APIRoute):
    """A path operation whose endpoint takes the request and returns a response.

    For the hottest endpoints, which read their input themselves (identity's
    token endpoint parses its form, OAuth 2.1 section 3.2): the endpoint is
    served as Starlette serves a route, without FastAPI's parameter solving
    and the exit stacks kept for dependencies with ``yield``, which it has
    none of. Exception handlers, middleware and the OpenAPI document are the
    same as for any other operation. Measured in-process on identity's
    client-credentials request, the signature left out: 97 us against 70 us.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        parameters = list(inspect.signature(endpoint).parameters.values())
        if len(parameters) != 1 or parameters[0].annotation not in (
            Request,
            "Request",
        ):
            raise TypeError(
                f"{endpoint.__qualname__} must take exactly one parameter, "
                "the Request, to be a RequestRoute"
            )
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(endpoint)
