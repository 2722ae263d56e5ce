"""Prometheus scrapes every service on its metrics port and the series move."""

import socket
from collections.abc import Callable

import httpx
import pytest

from tests.support.flows import (
    GUARDED_ORDERS,
    client_credentials_token,
    code_flow,
    flows_platform,
    orders_flow,
)
from tests.support.processes import Platform
from tests.support.prometheus import Prometheus, running_prometheus

pytestmark = pytest.mark.e2e

BATCH = 10


def targets(platform: Platform) -> dict[str, str]:
    return {s.name: f"127.0.0.1:{s.port + 1000}" for s in platform.services()}


def drive(platform: Platform, count: int = BATCH) -> None:
    with httpx.Client(base_url=platform.public_url) as client:
        for _ in range(count):
            assert client.get("/auth/healthz").status_code == 200
            # No route of orders matches it: orders answers 404 without a token.
            assert client.get("/orders/no-such-order/at-all").status_code == 404
            assert client.get("/nothing-here").status_code == 404


def at_least(wanted: float) -> Callable[[float], bool]:
    return lambda value: value >= wanted


def requests_total(prometheus: Prometheus, selector: str) -> float:
    return prometheus.value(f"sum(http_requests_total{{{selector}}})") or 0.0


def test_prometheus_sees_every_service_and_the_request_series_move(platform, tmp_path):
    with running_prometheus(tmp_path / "prometheus", targets(platform)) as prometheus:
        for job in ("identity", "orders", "gateway"):
            prometheus.wait_for(f'up{{job="{job}"}}', lambda up: up == 1)

        series = {
            "gateway_to_identity": 'job="gateway",method="GET",route="/auth/*",status="200"',
            "identity": 'job="identity",method="GET",route="/healthz",status="200"',
            "gateway_to_orders": 'job="gateway",method="GET",route="/orders/*",status="404"',
            "orders_unmatched": 'job="orders",method="GET",route="unmatched",status="404"',
            "gateway_unmatched": 'job="gateway",method="GET",route="unmatched",status="404"',
        }
        before = {name: requests_total(prometheus, s) for name, s in series.items()}
        drive(platform)
        for name, selector in series.items():
            prometheus.wait_for(
                f"sum(http_requests_total{{{selector}}})",
                at_least(before[name] + BATCH),
            )

        drive(platform)
        prometheus.wait_for(
            'sum(increase(http_requests_total{job="gateway",route="/auth/*"}[1m]))',
            lambda increase: increase > 0,
        )
        prometheus.wait_for(
            'sum(increase(http_requests_total{job="identity",route="/healthz"}[1m]))',
            lambda increase: increase > 0,
        )
        prometheus.wait_for(
            'sum(http_request_duration_seconds_count{job="gateway",route="/auth/*"})',
            lambda count: count >= 2 * BATCH,
        )
        quantile = prometheus.wait_for(
            "histogram_quantile(0.5, sum by (le) (rate("
            'http_request_duration_seconds_bucket{job="gateway",route="/auth/*"}[1m])))',
            lambda seconds: seconds == seconds,  # not NaN: there were requests
        )
        assert 0 < quantile < 60

        for job in ("identity", "orders", "gateway"):
            # Eventually: the gauge falls after the answer is sent.
            prometheus.wait_for(
                f'http_requests_in_flight{{job="{job}"}}', lambda value: value == 0
            )
            assert prometheus.value(f'process_resident_memory_bytes{{job="{job}"}}')
            assert prometheus.value(f'python_info{{job="{job}"}}') == 1
            # The event loop's timer has ticked (every 20 ms) since start-up.
            ticks = prometheus.value(f'event_loop_lag_seconds_count{{job="{job}"}}')
            assert ticks is not None, job
            assert ticks > 0, job

        # Raw paths never become labels.
        routes = {
            r["metric"]["route"]
            for r in prometheus.query("count by (route) (http_requests_total)")
        }
        assert "/orders/no-such-order/at-all" not in routes
        assert "/nothing-here" not in routes


# Each domain series the flows must move (HELPERS.md "Platform contracts").
MOVED_BY_THE_FLOWS = {
    name: f"sum({selector})"
    for name, selector in {
        "client_credentials tokens": 'identity_tokens_issued_total{job="identity",'
        'grant_type="client_credentials"}',
        "authorization_code tokens": 'identity_tokens_issued_total{job="identity",'
        'grant_type="authorization_code"}',
        "refresh_token tokens": 'identity_tokens_issued_total{job="identity",'
        'grant_type="refresh_token"}',
        "successful logins": 'identity_login_attempts_total{job="identity",'
        'outcome="success"}',
        "orders created": 'orders_created_total{job="orders"}',
        "orders confirmed": 'orders_status_transitions_total{job="orders",'
        'to_status="confirmed"}',
        "orders cancelled": 'orders_status_transitions_total{job="orders",'
        'to_status="cancelled"}',
        "rate-limit admissions": 'gateway_rate_limit_decisions_total{job="gateway",'
        'policy="default",outcome="allowed"}',
        "calls to orders": "gateway_upstream_request_duration_seconds_count{"
        'job="gateway",upstream="orders"}',
        "calls to identity": "gateway_upstream_request_duration_seconds_count{"
        'job="gateway",upstream="identity"}',
        "token rejections": 'gateway_token_rejections_total{job="gateway"}',
    }.items()
}


def test_the_domain_series_exist_and_move_after_the_flows(tmp_path):
    with (
        flows_platform(tmp_path) as platform,
        running_prometheus(tmp_path / "prometheus", targets(platform)) as prometheus,
    ):
        for job in ("identity", "orders", "gateway"):
            prometheus.wait_for(f'up{{job="{job}"}}', lambda up: up == 1)
        key_age = prometheus.wait_for(
            'identity_signing_key_age_seconds{job="identity"}',
            lambda seconds: seconds >= 0,
        )
        before = {
            name: prometheus.value(query) or 0.0
            for name, query in MOVED_BY_THE_FLOWS.items()
        }

        token = client_credentials_token(platform, "orders:read orders:write")
        orders_flow(platform, token, GUARDED_ORDERS)
        code_flow(platform)
        refused = httpx.get(
            f"{platform.public_url}{GUARDED_ORDERS}",
            headers={"Authorization": "Bearer not-a-token"},
        )
        assert refused.status_code == 401, refused.text

        for name, query in MOVED_BY_THE_FLOWS.items():
            moved = prometheus.wait_for(query, at_least(before[name] + 1))
            assert moved >= before[name] + 1, name
        # The keys were fetched at start-up (prefetch), before any request.
        prometheus.wait_for(
            'sum(gateway_jwks_refreshes_total{job="gateway",outcome="success"})',
            at_least(1),
        )
        states = {
            r["metric"]["upstream"]: float(r["value"][1])
            for r in prometheus.query('gateway_circuit_state{job="gateway"}')
        }
        assert states == {"identity": 0.0, "orders": 0.0}
        prometheus.wait_for(
            'identity_signing_key_age_seconds{job="identity"}',
            lambda seconds: seconds > key_age,
        )


def test_metrics_are_served_on_port_plus_1000_and_never_on_the_public_port(platform):
    for service in platform.services():
        public = httpx.get(f"{service.base_url}/metrics")
        metrics = httpx.get(service.metrics_url)

        assert public.status_code == 404, service.name
        assert metrics.status_code == 200, service.name
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE http_requests_total counter" in metrics.text
        assert "# TYPE http_request_duration_seconds histogram" in metrics.text
        assert "http_requests_in_flight" in metrics.text

    through_gateway = httpx.get(f"{platform.public_url}/auth/metrics")
    assert through_gateway.status_code == 404


def test_the_metrics_port_closes_when_the_service_stops(platform):
    port = platform.orders.port + 1000
    assert httpx.get(platform.orders.metrics_url).status_code == 200

    platform.orders.stop()

    assert "metrics server stopped" in [
        line["event"] for line in platform.orders.log_lines()
    ]
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("127.0.0.1", port))
