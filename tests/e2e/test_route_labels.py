"""The gateway's own early answers carry the route they were meant for.

A 401, 413, 429, a breaker's 503 or a CORS preflight is answered before
anything goes upstream; its access log line, its ``http_requests_total``
series and its span must still name the route template (``/shop/*``), not
``unmatched``, or an operator cannot tell which route refuses.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_traces import access_line, tracing_environment
from tests.support.flows import GUARDED_ORDERS, flows_platform
from tests.support.otlp import OtlpReceiver
from tests.support.processes import Platform
from tests.support.servers import free_port

pytestmark = pytest.mark.e2e

ORIGIN = "https://app.routes.test"
ROUTES: list[dict[str, Any]] = [
    {
        "prefix": "/tiny",
        "upstream": "orders",
        "strip_prefix": True,
        "max_body_bytes": 16,
    },
    {"prefix": "/scarce", "upstream": "orders", "rate_limit": "scarce"},
    {"prefix": "/dead", "upstream": "dead", "retry": {"attempts": 1}},
]
DEAD_UPSTREAM: dict[str, Any] = {
    "url": f"http://127.0.0.1:{free_port()}",
    "circuit_breaker": {
        "window": 2,
        "minimum_calls": 2,
        "failure_rate": 0.5,
        "open_seconds": 60,
    },
}


@pytest.fixture
def gateway_platform(tmp_path: Path, otlp_receiver: OtlpReceiver) -> Iterator[Platform]:
    with flows_platform(
        tmp_path,
        env={
            **tracing_environment(otlp_receiver),
            "GATEWAY_CORS_ORIGINS": f'["{ORIGIN}"]',
        },
        extra_upstreams={"dead": DEAD_UPSTREAM},
        extra_routes=ROUTES,
        rate_limits={"scarce": {"capacity": 1, "refill_per_second": 0.001}},
    ) as running:
        yield running


Answer = tuple[str, int, str]


def early_answers(platform: Platform) -> dict[str, Answer]:
    """request id -> (method, status, route) of one request per early answer."""
    answers: dict[str, Answer] = {}
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    requests = [
        ("route-401", "/shop/*", "GET", GUARDED_ORDERS, {}, b""),
        ("route-413", "/tiny/*", "POST", "/tiny/orders", {}, b"x" * 64),
        ("route-200", "/scarce/*", "GET", "/scarce", {}, b""),
        ("route-429", "/scarce/*", "GET", "/scarce", {}, b""),
        ("route-502-1", "/dead/*", "GET", "/dead/x", {}, b""),
        ("route-502-2", "/dead/*", "GET", "/dead/x", {}, b""),
        ("route-503", "/dead/*", "GET", "/dead/x", {}, b""),
        ("route-preflight", "/shop/*", "OPTIONS", GUARDED_ORDERS, preflight, b""),
    ]
    with httpx.Client(base_url=platform.public_url, timeout=30) as client:
        for request_id, route, method, path, headers, body in requests:
            response = client.request(
                method,
                path,
                headers={"X-Request-ID": request_id, **headers},
                content=body or None,
            )
            answers[request_id] = (method, response.status_code, route)
    return answers


def test_early_answers_are_logged_counted_and_traced_under_their_route(
    gateway_platform, otlp_receiver
):
    answers = early_answers(gateway_platform)
    assert [status for _, status, _ in answers.values()] == [
        401,
        413,
        404,
        429,
        502,
        502,
        503,
        204,
    ]

    lines = {
        request_id: access_line(gateway_platform, "gateway", request_id)
        for request_id in answers
    }
    logged = {
        request_id: (line["method"], line["status"], line["route"])
        for request_id, line in lines.items()
    }
    assert logged == answers

    scraped = httpx.get(gateway_platform.gateway.metrics_url).text
    counted = {
        (sample.labels["method"], int(sample.labels["status"]), sample.labels["route"])
        for family in text_string_to_metric_families(scraped)
        if family.name == "http_requests"
        for sample in family.samples
        if sample.name == "http_requests_total"
    }
    assert set(answers.values()) <= counted

    traces = {str(line["trace_id"]): request_id for request_id, line in lines.items()}
    spans = otlp_receiver.wait_for(
        lambda spans: (
            set(traces)
            <= {
                s.trace_id
                for s in spans
                if (s.service, s.kind) == ("gateway", "server")
            }
        )
    )
    named = {
        traces[s.trace_id]: s.name
        for s in spans
        if (s.service, s.kind) == ("gateway", "server") and s.trace_id in traces
    }
    assert named == {
        request_id: f"{method} {route}"
        for request_id, (method, _, route) in answers.items()
    }
