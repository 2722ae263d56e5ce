"""Traces with the OpenTelemetry SDK, configured only by the standard variables.

Tracing is on when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and ``OTEL_SDK_DISABLED`` is not
``true``. Spans then leave over OTLP/HTTP (protobuf) in batches. Without an
endpoint nothing is installed: no tracer provider, no instrumentation, no ASGI
middleware, so the request path pays nothing and log lines carry ``null`` trace
ids. The SDK itself reads ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER`` (+``_ARG``), ``OTEL_PROPAGATORS`` and ``OTEL_BSP_*``.

What is traced: inbound requests (the ASGI middleware, one server span named
``<method> <route template>``), outbound HTTP of httpx (servicekit's JWKS
client) and of aiohttp where it is installed (no image installs it; the
gateway's own upstream client makes its spans itself), SQLAlchemy engines
made by :func:`servicekit.database.create_engine`, and redis-py. W3C trace context
(``traceparent``) is read from requests and written on outbound ones.
"""

import importlib
import importlib.util
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.types import ASGIApp, Scope

from servicekit.config import ConfigurationError
from servicekit.metrics import method_label

logger = logging.getLogger(__name__)

SUPPORTED_PROTOCOL = "http/protobuf"

_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_PROTOCOL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
)


def tracing_requested(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks for traces to be exported.

    A protocol or exporter this build cannot honour is a configuration error
    rather than silently sending nothing.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False

    exporters = {
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    }
    if exporters == {"none"}:
        return False
    if exporters != {"otlp"}:
        raise ConfigurationError(
            "OTEL_TRACES_EXPORTER: only 'otlp' or 'none' is supported "
            f"(given {environ['OTEL_TRACES_EXPORTER']!r})"
        )

    for variable in _PROTOCOL_VARIABLES:
        protocol = environ.get(variable, "").strip()
        if protocol and protocol != SUPPORTED_PROTOCOL:
            raise ConfigurationError(
                f"{variable}: only {SUPPORTED_PROTOCOL!r} is supported "
                f"(given {protocol!r}); point it at the collector's OTLP/HTTP port"
            )

    requested = False
    for variable in _ENDPOINT_VARIABLES:
        endpoint = environ.get(variable, "").strip()
        if not endpoint:
            continue
        parsed = urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigurationError(
                f"{variable}: expected an absolute http(s) URL such as "
                f"http://otel-collector:4318 (given {endpoint!r})"
            )
        requested = True
    return requested


def service_resource(service: str, version: str | None) -> Resource:
    """The SDK's resource from the environment, named ``service`` by default.

    ``OTEL_SERVICE_NAME`` and ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``
    win over the default, as the specification asks.
    """
    detected = Resource.create()
    defaults: dict[str, Any] = {}
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        defaults[SERVICE_NAME] = service
    if version and SERVICE_VERSION not in detected.attributes:
        defaults[SERVICE_VERSION] = version
    return detected.merge(Resource(defaults))


def build_tracer_provider(service: str, version: str | None) -> TracerProvider | None:
    """A tracer provider exporting over OTLP/HTTP, or ``None`` when not asked for.

    The sampler comes from ``OTEL_TRACES_SAMPLER`` through the SDK's own parsing
    (default ``parentbased_always_on``), so a caller's sampling decision in
    ``traceparent`` is followed.
    """
    if not tracing_requested(os.environ):
        return None

    # Imported here so that a service without an endpoint never loads the
    # exporter and its protobuf modules.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )

    provider = TracerProvider(resource=service_resource(service, version))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _url_without_query(url: Any) -> str:
    # Queries may carry codes or state; spans go to another system and are
    # held to the same rule as logs.
    return str(url.with_query(None))


def _drop_query_from_server_span(span: trace.Span, scope: dict[str, Any]) -> None:
    attributes = getattr(span, "attributes", None) or {}
    url = attributes.get("http.url")
    if isinstance(url, str) and "?" in url:
        span.set_attribute("http.url", url.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


def _initial_span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The route is not matched yet; name_server_span renames the span once it
    # is, and the raw path never becomes a span name (it may hold ids).
    return method_label(str(scope.get("method", ""))), {}


def name_server_span(method: str, route: str) -> None:
    """Name the current server span after the route template (semconv HTTP).

    Cheap when tracing is off: the current span is then the invalid span.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    if route == "unmatched":
        span.update_name(method)
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)


@dataclass
class Telemetry:
    """What :func:`configure_telemetry` installed, to wrap the app and to flush."""

    provider: TracerProvider | None

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def instrument_app(self, app: ASGIApp) -> ASGIApp:
        """``app`` inside the OpenTelemetry ASGI middleware when tracing is on."""
        if self.provider is None:
            return app
        return OpenTelemetryMiddleware(
            app,
            default_span_details=_initial_span_details,
            server_request_hook=_drop_query_from_server_span,
            tracer_provider=self.provider,
            # One span per body chunk would dwarf the request's own spans.
            exclude_spans=["receive", "send"],
        )

    def shutdown(self) -> None:
        """Export what is still buffered; called once the server has drained.

        Safe to call twice: the provider is forgotten once shut down.
        """
        provider, self.provider = self.provider, None
        if provider is not None:
            provider.shutdown()
            logger.info("tracing stopped")


def _service_version(service: str) -> str | None:
    try:
        return metadata.version(service)
    except metadata.PackageNotFoundError:
        return None


def configure_telemetry(service: str) -> Telemetry:
    """Install tracing process-wide as the ``OTEL_*`` variables ask.

    Must run before the app, its engines and its HTTP clients are created.
    """
    provider = build_tracer_provider(service, _service_version(service))
    if provider is None:
        return Telemetry(provider=None)

    trace.set_tracer_provider(provider)
    instrumented = instrument_libraries(provider)
    logger.info(
        "tracing enabled",
        extra={
            "otel_service_name": provider.resource.attributes.get(SERVICE_NAME),
            "instrumented": instrumented,
        },
    )
    return Telemetry(provider=provider)


# library -> (instrumentation module, instrumentor class, extra arguments). Each
# image installs only its own service's libraries (redis only in the gateway's,
# aiohttp in none: only the tests' upstream server uses it), so a library that
# is absent is skipped.
_INSTRUMENTATIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor", {}),
    "aiohttp": (
        "opentelemetry.instrumentation.aiohttp_client",
        "AioHttpClientInstrumentor",
        {"url_filter": _url_without_query},
    ),
    "redis": ("opentelemetry.instrumentation.redis", "RedisInstrumentor", {}),
    "sqlalchemy": (
        "opentelemetry.instrumentation.sqlalchemy",
        "SQLAlchemyInstrumentor",
        # The instrumentation declares "sqlalchemy < 2.1" and would silently do
        # nothing on the locked 2.1; it relies only on engine events that 2.1
        # keeps, which tests/e2e/test_traces.py checks by finding the spans.
        {"skip_dep_check": True},
    ),
}


def instrument_libraries(provider: TracerProvider) -> list[str]:
    """Instrument every supported client library that is installed."""
    instrumented = []
    for library, (module, class_name, arguments) in _INSTRUMENTATIONS.items():
        if importlib.util.find_spec(library) is None:
            continue
        instrumentor = getattr(importlib.import_module(module), class_name)()
        instrumentor.instrument(tracer_provider=provider, **arguments)
        instrumented.append(library)
    return instrumented
