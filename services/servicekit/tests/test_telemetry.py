from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
)

from servicekit.config import ConfigurationError
from servicekit.telemetry import (
    Telemetry,
    build_tracer_provider,
    configure_telemetry,
    name_server_span,
    service_resource,
    tracing_requested,
)

ENDPOINT = "http://collector.test:4318"


@pytest.fixture(autouse=True)
def no_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment that names no OTEL_* variable."""
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[TracerProvider]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    built = build_tracer_provider("orders", "1.2.3")
    assert built is not None
    yield built
    built.shutdown()


@pytest.mark.parametrize(
    ("environ", "requested"),
    [
        pytest.param({}, False, id="nothing-set"),
        pytest.param({"OTEL_SERVICE_NAME": "x"}, False, id="name-only"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True, id="endpoint"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT + "/v1/traces"},
            True,
            id="traces-endpoint",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "true"},
            False,
            id="sdk-disabled",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "none"},
            False,
            id="exporter-none",
        ),
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            True,
            id="http-protobuf",
        ),
    ],
)
def test_tracing_is_requested_only_with_an_endpoint(environ, requested):
    assert tracing_requested(environ) is requested


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
            "OTEL_EXPORTER_OTLP_PROTOCOL: only 'http/protobuf' is supported "
            "(given 'grpc'); point it at the collector's OTLP/HTTP port",
            id="grpc",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT: expected an absolute http(s) URL such as "
            "http://otel-collector:4318 (given 'collector:4318')",
            id="relative-endpoint",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "console"},
            "OTEL_TRACES_EXPORTER: only 'otlp' or 'none' is supported "
            "(given 'console')",
            id="console",
        ),
    ],
)
def test_unsupported_exporters_are_configuration_errors(environ, message):
    with pytest.raises(ConfigurationError) as raised:
        tracing_requested(environ)

    assert str(raised.value) == message


def test_without_an_endpoint_nothing_is_installed():
    telemetry = configure_telemetry("orders")
    app = FastAPI()

    assert telemetry.enabled is False
    assert telemetry.instrument_app(app) is app
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    telemetry.shutdown()


def test_spans_are_exported_over_otlp_http_to_the_endpoint(provider):
    processor = provider._active_span_processor._span_processors[0]
    exporter = processor._batch_processor._exporter

    assert exporter._endpoint == ENDPOINT + "/v1/traces"


def test_the_default_sampler_follows_the_callers_decision(provider):
    assert isinstance(provider.sampler, ParentBased)


@pytest.mark.parametrize(
    ("sampler", "argument", "description"),
    [
        pytest.param("traceidratio", "0.25", "TraceIdRatioBased{0.25}", id="ratio"),
        pytest.param(
            "parentbased_traceidratio",
            "0.1",
            "ParentBased{root:TraceIdRatioBased{0.1},remoteParentSampled:"
            "AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,"
            "localParentSampled:AlwaysOnSampler,localParentNotSampled:"
            "AlwaysOffSampler}",
            id="parent-based-ratio",
        ),
    ],
)
def test_the_sampler_comes_from_otel_traces_sampler(
    monkeypatch, sampler, argument, description
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)

    built = build_tracer_provider("orders", None)

    assert built is not None
    assert built.sampler.get_description() == description
    built.shutdown()


def test_always_off_samples_nothing(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")

    built = build_tracer_provider("orders", None)

    assert built is not None
    assert built.sampler is ALWAYS_OFF
    assert not built.get_tracer("t").start_span("x").is_recording()
    built.shutdown()


def test_the_service_is_named_after_itself_unless_the_environment_says():
    resource = service_resource("orders", "1.2.3")

    assert resource.attributes["service.name"] == "orders"
    assert resource.attributes["service.version"] == "1.2.3"


def test_otel_service_name_and_resource_attributes_win(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-eu")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.version=9"
    )

    resource = service_resource("orders", "1.2.3")

    assert resource.attributes["service.name"] == "orders-eu"
    assert resource.attributes["service.version"] == "9"
    assert resource.attributes["deployment.environment"] == "test"


@pytest.mark.parametrize(
    ("route", "name", "http_route"),
    [
        pytest.param(
            "/orders/{order_id}", "GET /orders/{order_id}", "/orders/{order_id}"
        ),
        pytest.param("unmatched", "GET", None, id="unmatched"),
    ],
)
def test_the_server_span_is_named_after_the_route_template(route, name, http_route):
    exporter = InMemorySpanExporter()
    local = TracerProvider()
    local.add_span_processor(SimpleSpanProcessor(exporter))

    with local.get_tracer("t").start_as_current_span("GET"):
        name_server_span("GET", route)

    [span] = exporter.get_finished_spans()
    assert span.name == name
    assert (span.attributes or {}).get("http.route") == http_route


def test_naming_without_a_span_is_harmless():
    name_server_span("GET", "/x")

    assert Telemetry(provider=None).enabled is False
