"""The Grafana dashboard: valid JSON, one row per service, only contracted
metrics, shipped by the umbrella chart as a sidecar-labelled ConfigMap."""

import json

import kubernetes_validate
import pytest

from tests.support.charts import find, of_kind, render_platform
from tests.support.dashboards import (
    DASHBOARD,
    contract_samples,
    load_dashboard,
    metric_names,
    panels,
    queries,
)

# servicekit's, exported by every service (tests/e2e/test_dashboard_metrics.py
# checks them against running services).
GENERIC_SAMPLES = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_duration_seconds_sum",
    "http_request_duration_seconds_count",
    "http_requests_in_flight",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "event_loop_lag_seconds_bucket",
}


def test_the_dashboard_is_json_with_unique_panel_ids():
    dashboard = json.loads(DASHBOARD.read_text())

    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "platform-overview"
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {
        "datasource",
        "namespace",
        "gateway_job",
        "identity_job",
        "orders_job",
    }


def test_there_is_a_row_per_service_with_red_panels():
    dashboard = load_dashboard()

    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == ["gateway", "identity", "orders"]
    for service in rows:
        expressions = " ".join(
            expr for _, expr in queries(dashboard) if f"${service}_job" in expr
        )
        assert "rate(http_requests_total" in expressions, service
        assert 'status=~\\"5..\\"' in json.dumps(expressions), service
        assert "http_request_duration_seconds_bucket" in expressions, service


def test_the_gateway_row_has_rate_limit_and_breaker_panels():
    titles = {panel["title"] for panel in panels(load_dashboard())}

    assert {
        "Rate-limit decisions by policy and outcome",
        "Rate-limit backend errors",
        "Circuit breaker state by upstream",
        "Circuit transitions",
    } <= titles


def test_every_query_names_only_metrics_of_the_contract():
    promised = GENERIC_SAMPLES.union(
        *(contract_samples(s) for s in ("gateway", "identity", "orders"))
    )

    unknown = {
        (title, name)
        for title, expr in queries(load_dashboard())
        for name in metric_names(expr)
        if name not in promised
    }
    assert unknown == set()


def test_every_domain_metric_of_the_contract_has_a_panel():
    named = set().union(*(metric_names(expr) for _, expr in queries(load_dashboard())))

    for service in ("gateway", "identity", "orders"):
        assert contract_samples(service) - named <= {
            # Histograms are charted by their buckets only.
            "gateway_upstream_request_duration_seconds_sum",
            "gateway_upstream_request_duration_seconds_count",
        }, service


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        pytest.param(
            'sum by (route) (rate(http_requests_total{job=~"$j",le="1"}[5m]))',
            {"http_requests_total"},
            id="aggregation",
        ),
        pytest.param(
            "histogram_quantile(0.95, sum by (upstream, le) (rate(a_bucket[1m])))",
            {"a_bucket"},
            id="quantile",
        ),
        pytest.param(
            "sum(rate(a_total[1m])) / sum(rate(b_total[1m]))",
            {"a_total", "b_total"},
            id="ratio",
        ),
    ],
)
def test_metric_names_are_read_from_promql(expression, names):
    assert metric_names(expression) == names


def test_the_umbrella_ships_the_dashboard_as_a_sidecar_configmap():
    manifests = render_platform()

    configmap = find(manifests, "ConfigMap", "platform-dashboards")
    assert configmap.labels["grafana_dashboard"] == "1"
    assert configmap.labels["app.kubernetes.io/part-of"] == "platform"
    assert configmap.body["metadata"]["namespace"] == "platform"
    shipped = configmap.body["data"]["platform.json"]
    assert json.loads(shipped) == load_dashboard()
    kubernetes_validate.validate(configmap.body, "1.33.0", strict=True)


def test_the_dashboard_labels_and_annotations_are_configurable():
    manifests = render_platform(
        {
            "dashboards": {
                "labels": {"grafana_dashboard": "platform"},
                "annotations": {"grafana_folder": "Platform"},
            }
        }
    )

    configmap = find(manifests, "ConfigMap", "platform-dashboards")
    assert configmap.labels["grafana_dashboard"] == "platform"
    assert configmap.annotations == {"grafana_folder": "Platform"}


def test_the_dashboard_can_be_left_out():
    manifests = render_platform({"dashboards": {"enabled": False}})

    assert "platform-dashboards" not in {
        m.name for m in of_kind(manifests, "ConfigMap")
    }
