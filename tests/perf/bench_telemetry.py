"""What servicekit's request telemetry costs per request, in process.

The request-context middleware is driven directly with a trivial ASGI app (no
sockets, no uvicorn), so the figures isolate what this layer adds: request id
and access log only, plus the HTTP metrics, plus tracing (the OpenTelemetry
ASGI middleware and a batch processor whose exporter drops spans, so no
network is measured), sampled and not. Without an OTLP endpoint a service runs
the second configuration. Medians of several rounds; numbers on a shared machine
are noisy, compare the ratios within one report.
"""

import asyncio
import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.metrics import HttpMetrics
from servicekit.requests import RequestContextMiddleware
from servicekit.telemetry import Telemetry

REQUESTS_PER_ROUND = 5000
ROUNDS = 5


class _DroppingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Route:
    path_format = "/orders/*"


async def _endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = _Route()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


def _scope() -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/orders/42",
        "raw_path": b"/orders/42",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway.test")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


async def _round(app: ASGIApp) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS_PER_ROUND):
        await app(_scope(), _receive, _send)
    return (time.perf_counter() - started) / REQUESTS_PER_ROUND * 1e6


def _median_microseconds(app: ASGIApp) -> float:
    return statistics.median(asyncio.run(_round(app)) for _ in range(ROUNDS))


def run(workdir: Path) -> str:
    """Per-request microseconds of each configuration, and the ratios."""
    # The access log line is formatted and dropped, as a disabled handler would.
    logging.getLogger("servicekit.access").setLevel(logging.CRITICAL)

    baseline = RequestContextMiddleware(_endpoint)
    metered = RequestContextMiddleware(
        _endpoint, metrics=HttpMetrics(CollectorRegistry())
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DroppingExporter()))
    traced = Telemetry(provider).instrument_app(
        RequestContextMiddleware(_endpoint, metrics=HttpMetrics(CollectorRegistry()))
    )

    unsampled_provider = TracerProvider(sampler=ALWAYS_OFF)
    unsampled = Telemetry(unsampled_provider).instrument_app(
        RequestContextMiddleware(_endpoint, metrics=HttpMetrics(CollectorRegistry()))
    )

    results = {
        "request id + access log": _median_microseconds(baseline),
        "+ HTTP metrics": _median_microseconds(metered),
        "+ HTTP metrics + tracing, every request sampled": _median_microseconds(traced),
        "+ HTTP metrics + tracing, sampler always_off": _median_microseconds(unsampled),
    }
    provider.shutdown()
    unsampled_provider.shutdown()

    first = results["request id + access log"]
    lines = [
        "## servicekit request telemetry (in process)",
        "",
        f"{REQUESTS_PER_ROUND} requests per round, median of {ROUNDS} rounds, "
        "microseconds per request (no network).",
        "",
        "| configuration | µs/request | ratio |",
        "| --- | ---: | ---: |",
    ]
    lines.extend(
        f"| {name} | {value:.1f} | {value / first:.2f} |"
        for name, value in results.items()
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(Path(".")))
