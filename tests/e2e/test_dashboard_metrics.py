"""Every metric the Grafana dashboard queries is one the services export, and
every query is PromQL that a real Prometheus evaluates.

Every metric, generic or domain, is checked against the running services'
scrapes after the real flows (tests.support.flows) have run; families are
compared, not samples, because a labelled metric no request has touched yet
exports only its HELP and TYPE lines.
"""

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.dashboards import (
    family_samples,
    instantiate,
    load_dashboard,
    metric_names,
    queries,
)
from tests.support.flows import (
    GUARDED_ORDERS,
    client_credentials_token,
    code_flow,
    flows_platform,
    orders_flow,
)
from tests.support.processes import Platform
from tests.support.prometheus import running_prometheus

pytestmark = pytest.mark.e2e

SERVICES = ("gateway", "identity", "orders")
_JOB_VARIABLE = re.compile(r"\$(gateway|identity|orders)_job")


def scraped_samples(platform: Platform) -> dict[str, set[str]]:
    """Each service's sample names its metric families export, as its metrics
    port serves them now."""
    exported: dict[str, set[str]] = {}
    for service in platform.services():
        text = httpx.get(service.metrics_url).text
        exported[service.name] = set().union(
            *(
                family_samples(family.name, family.type)
                for family in text_string_to_metric_families(text)
            )
        )
    return exported


def service_of(expression: str) -> str:
    services: set[str] = set(_JOB_VARIABLE.findall(expression))
    [service] = services
    return service


def test_every_dashboard_metric_is_exported_by_its_service(tmp_path):
    with flows_platform(tmp_path) as platform:
        token = client_credentials_token(platform, "orders:read orders:write")
        orders_flow(platform, token, GUARDED_ORDERS)
        code_flow(platform)
        exported = scraped_samples(platform)

    missing: list[str] = []
    for title, expression in queries(load_dashboard()):
        service = service_of(expression)
        missing.extend(
            f"{service}: {title}: {name}"
            for name in sorted(metric_names(expression))
            if name not in exported[service]
        )
    assert missing == []
    for service in SERVICES:
        assert {
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            "http_requests_in_flight",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "event_loop_lag_seconds_bucket",
        } <= exported[service], service


def test_every_dashboard_query_runs_in_prometheus(platform, tmp_path):
    targets = {s.name: f"127.0.0.1:{s.port + 1000}" for s in platform.services()}
    variables = {
        "__rate_interval": "1m",
        "namespace": ".*",
        **{f"{service}_job": service for service in SERVICES},
    }
    with running_prometheus(tmp_path / "prometheus", targets) as prometheus:
        for service in SERVICES:
            prometheus.wait_for(f'up{{job="{service}"}}', lambda up: up == 1)
        with httpx.Client(base_url=platform.public_url) as client:
            for _ in range(5):
                client.get("/auth/healthz")
                client.get("/orders/x")
        prometheus.wait_for(
            'sum(http_requests_total{job="gateway",route="/orders/*"})',
            lambda total: total >= 5,
        )

        empty: list[str] = []
        for title, expression in queries(load_dashboard()):
            # query() asserts Prometheus accepted the expression.
            result = prometheus.query(instantiate(expression, variables))
            generic = all(
                name.startswith(("http_", "process_", "event_loop_"))
                for name in metric_names(expression)
            )
            if generic and not result:
                empty.append(f"{service_of(expression)}: {title}: {expression}")
    assert empty == []
