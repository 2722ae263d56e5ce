"""One request through the gateway is one trace across the services it reaches.

The services export over OTLP/HTTP to a receiver started by the test; spans
are linked through W3C ``traceparent``, and log lines carry the same ids.
"""

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.processes import (
    Platform,
    running_platform,
    service_environment,
    service_token,
)

pytestmark = pytest.mark.e2e


def tracing_environment(receiver: OtlpReceiver) -> dict[str, str]:
    """What a deployment sets to send traces to a collector, plus a short batch."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # Milliseconds: export promptly so that the test does not wait 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


@pytest.fixture
def traced_platform(tmp_path: Path, otlp_receiver: OtlpReceiver) -> Iterator[Platform]:
    with running_platform(tmp_path, env=tracing_environment(otlp_receiver)) as running:
        yield running


def only(spans: list[ReceivedSpan], **wanted: str | None) -> ReceivedSpan:
    """The one span with the given fields; fails naming what was there."""
    found = [
        span
        for span in spans
        if all(getattr(span, key) == value for key, value in wanted.items())
    ]
    assert len(found) == 1, f"{wanted} matched {found} among {spans}"
    return found[0]


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [span for span in spans if span.parent_span_id == parent.span_id]


def descendants(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    found = []
    frontier = [root]
    while frontier:
        below = [span for parent in frontier for span in children(spans, parent)]
        found.extend(below)
        frontier = below
    return found


def access_line(
    platform: Platform, service: str, request_id: str, timeout: float = 10.0
) -> dict[str, object]:
    """The access log line of ``request_id``, once written.

    It is written after the answer is sent, so a client may see the answer
    first.
    """
    process = {s.name: s for s in platform.services()}[service]
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            line
            for line in process.log_lines()
            if line["request_id"] == request_id and line["event"] == "request"
        ]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1, lines
    return lines[0]


def test_a_request_to_identity_is_one_trace_from_gateway_to_database(
    traced_platform, otlp_receiver
):
    response = httpx.get(
        f"{traced_platform.public_url}/auth/readyz",
        headers={"X-Request-ID": "trace-identity-1"},
    )
    assert response.status_code == 200

    trace_id = str(
        access_line(traced_platform, "gateway", "trace-identity-1")["trace_id"]
    )
    otlp_receiver.wait_for(
        lambda spans: (
            {("gateway", "server"), ("identity", "server")}
            <= {(s.service, s.kind) for s in spans if s.trace_id == trace_id}
            and any(
                s.trace_id == trace_id and "db.system" in s.attributes for s in spans
            )
        )
    )
    spans = otlp_receiver.trace(trace_id)

    gateway_server = only(spans, service="gateway", kind="server")
    assert gateway_server.name == "GET /auth/*"
    assert gateway_server.parent_span_id is None
    assert gateway_server.attributes["http.route"] == "/auth/*"
    gateway_client = only(children(spans, gateway_server), kind="client")
    assert gateway_client.service == "gateway"
    identity_server = only(children(spans, gateway_client), kind="server")
    assert identity_server.service == "identity"
    assert identity_server.name == "GET /readyz"
    database = [
        s for s in descendants(spans, identity_server) if "db.system" in s.attributes
    ]
    assert database, f"no database span under {identity_server}"
    assert {s.attributes["db.system"] for s in database} == {"sqlite"}
    assert all(s.service == "identity" for s in database)
    # Exactly one trace holds identity's answer to this request.
    identity_readyz = [
        s
        for s in otlp_receiver.spans
        if s.service == "identity" and s.kind == "server" and s.name == "GET /readyz"
    ]
    assert identity_readyz == [identity_server]


def test_a_request_to_orders_continues_the_callers_trace(
    traced_platform, otlp_receiver
):
    trace_id = secrets.token_hex(16)
    caller_span_id = secrets.token_hex(8)
    query_secret = secrets.token_urlsafe(16)

    response = httpx.get(
        # No route of orders matches it, and no token is needed to learn that.
        f"{traced_platform.public_url}/orders/no-such-order/at-all?code={query_secret}",
        headers={
            "traceparent": f"00-{trace_id}-{caller_span_id}-01",
            "X-Request-ID": "trace-orders-1",
        },
    )
    assert response.status_code == 404

    otlp_receiver.wait_for(
        lambda spans: (
            {("gateway", "server"), ("orders", "server")}
            <= {(s.service, s.kind) for s in spans if s.trace_id == trace_id}
        )
    )
    spans = otlp_receiver.trace(trace_id)

    gateway_server = only(spans, service="gateway", kind="server")
    assert gateway_server.parent_span_id == caller_span_id
    assert gateway_server.name == "GET /orders/*"
    gateway_client = only(children(spans, gateway_server), kind="client")
    orders_server = only(children(spans, gateway_client), kind="server")
    assert orders_server.service == "orders"
    # orders has no route for the path: the span is named by method alone.
    assert orders_server.name == "GET"
    assert "http.route" not in orders_server.attributes
    # Queries may carry codes; spans leave for another system without them.
    assert not [s for s in spans if query_secret in repr(s.attributes)]

    for service, server_span in (
        ("gateway", gateway_server),
        ("orders", orders_server),
    ):
        line = access_line(traced_platform, service, "trace-orders-1")
        assert (line["trace_id"], line["span_id"]) == (trace_id, server_span.span_id)


def linked_to_database(
    platform: Platform, receiver: OtlpReceiver, request_id: str, upstream: str
) -> tuple[ReceivedSpan, ReceivedSpan, ReceivedSpan, list[ReceivedSpan]]:
    """The gateway server and client spans, ``upstream``'s server span and its
    database spans of the trace of ``request_id``, each linked to the one before.
    """
    trace_id = str(access_line(platform, "gateway", request_id)["trace_id"])
    receiver.wait_for(
        lambda spans: (
            {("gateway", "server"), ("gateway", "client"), (upstream, "server")}
            <= {(s.service, s.kind) for s in spans if s.trace_id == trace_id}
            and any(
                s.trace_id == trace_id
                and s.service == upstream
                and "db.system" in s.attributes
                for s in spans
            )
        )
    )
    spans = receiver.trace(trace_id)

    gateway_server = only(spans, service="gateway", kind="server")
    assert gateway_server.parent_span_id is None
    gateway_client = only(children(spans, gateway_server), kind="client")
    assert gateway_client.service == "gateway"
    upstream_server = only(children(spans, gateway_client), kind="server")
    assert upstream_server.service == upstream
    database = [
        s for s in descendants(spans, upstream_server) if "db.system" in s.attributes
    ]
    assert database, f"no database span under {upstream_server}"
    assert {(s.service, s.attributes["db.system"]) for s in database} == {
        (upstream, "sqlite")
    }
    return gateway_server, gateway_client, upstream_server, database


def test_an_order_written_and_read_with_a_token_is_traced_down_to_orders_database(
    traced_platform, otlp_receiver
):
    token = service_token(traced_platform, "orders:read orders:write")
    bearer = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        f"{traced_platform.public_url}/orders",
        json={
            "currency": "EUR",
            "items": [{"sku": "BOOK-1", "quantity": 1, "unit_price_minor": 900}],
        },
        headers={
            **bearer,
            "Idempotency-Key": "trace-order-create",
            "X-Request-ID": "trace-order-create-1",
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    read = httpx.get(
        f"{traced_platform.public_url}/orders/{order_id}",
        headers={**bearer, "X-Request-ID": "trace-order-read-1"},
        timeout=30,
    )
    assert read.status_code == 200, read.text

    gateway_server, _, orders_server, database = linked_to_database(
        traced_platform, otlp_receiver, "trace-order-create-1", "orders"
    )
    assert gateway_server.name == "POST /orders/*"
    assert orders_server.name == "POST /orders"
    assert orders_server.attributes["http.route"] == "/orders"
    assert any(s.name.startswith("INSERT") for s in database), database
    # The read goes to the driver directly (orders.storage.reads), with a span
    # of its own.
    gateway_server, _, orders_server, database = linked_to_database(
        traced_platform, otlp_receiver, "trace-order-read-1", "orders"
    )
    assert gateway_server.name == "GET /orders/*"
    assert orders_server.name == "GET /orders/{order_id}"
    assert [s.name for s in database] == ["SELECT orders"]
    assert token not in repr([s.attributes for s in otlp_receiver.spans])


def test_a_token_request_is_one_trace_down_to_identity_database(
    traced_platform, otlp_receiver
):
    response = httpx.post(
        f"{traced_platform.public_url}/auth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=(traced_platform.client_id, traced_platform.client_secret),
        headers={"X-Request-ID": "trace-token-1"},
        timeout=30,
    )
    assert response.status_code == 200, response.text

    gateway_server, _, identity_server, _ = linked_to_database(
        traced_platform, otlp_receiver, "trace-token-1", "identity"
    )
    assert gateway_server.name == "POST /auth/*"
    assert identity_server.name == "POST /token"


def test_every_log_line_written_inside_a_request_carries_trace_ids(
    traced_platform, otlp_receiver
):
    httpx.get(f"{traced_platform.public_url}/auth/no-such-page")
    httpx.get(f"{traced_platform.public_url}/orders/x")
    httpx.get(f"{traced_platform.public_url}/nothing-here")

    # Stopping flushes every line; what is checked is then complete.
    for service in reversed(traced_platform.services()):
        service.stop()
    for service in traced_platform.services():
        inside = [line for line in service.log_lines() if line["request_id"]]
        assert inside, f"{service.name} logged nothing inside a request"
        for line in inside:
            assert len(str(line["trace_id"])) == 32, line
            assert len(str(line["span_id"])) == 16, line


# What the gateway and orders do with their clients, in a process configured
# the way run_service configures a service.
CLIENTS_SCRIPT = """
import asyncio
import sys

import redis.asyncio

from servicekit.jwks import JwksCache
from servicekit.telemetry import configure_telemetry

telemetry = configure_telemetry("gateway")


async def main() -> None:
    client = redis.asyncio.Redis.from_url(sys.argv[1])
    await client.set("traced", "1")
    await client.aclose()
    cache = JwksCache(
        sys.argv[2],
        algorithms=["RS256"],
        ttl_seconds=60,
        refetch_cooldown_seconds=1,
        http_timeout_seconds=5,
    )
    await cache.refresh()
    await cache.close()


asyncio.run(main())
telemetry.shutdown()
"""


def test_redis_commands_and_jwks_fetches_are_client_spans(
    otlp_receiver, redis_server, jwks_server
):
    finished = subprocess.run(
        [sys.executable, "-c", CLIENTS_SCRIPT, redis_server.url, jwks_server.url],
        env=service_environment(tracing_environment(otlp_receiver)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr

    spans = otlp_receiver.wait_for(
        lambda spans: (
            {"redis", "http"}
            <= {
                "redis" if s.attributes.get("db.system") == "redis" else "http"
                for s in spans
                if s.kind == "client"
            }
        )
    )
    redis_span = only(spans, name="SET")
    assert redis_span.attributes["db.system"] == "redis"
    jwks_span = only(
        [s for s in spans if "db.system" not in s.attributes], kind="client"
    )
    assert jwks_span.attributes["http.url"] == jwks_server.url
    assert jwks_span.attributes["http.status_code"] == 200
    assert {s.service for s in spans} == {"gateway"}


def test_an_unusable_otlp_setting_stops_the_service_naming_the_variable(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-m", "orders"],
        env=service_environment(
            {
                "ORDERS_PORT": "8001",
                "ORDERS_ISSUER": "http://127.0.0.1:8080/auth",
                "ORDERS_JWKS_URL": "http://127.0.0.1:8000/.well-known/jwks.json",
                "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 2
    assert finished.stderr == (
        "orders: invalid configuration: OTEL_EXPORTER_OTLP_PROTOCOL: only "
        "'http/protobuf' is supported (given 'grpc'); point it at the "
        "collector's OTLP/HTTP port\n"
    )
