"""The Grafana dashboard the platform chart ships, and the metrics it names.

Also the platform's metric contract (HELPERS.md "Platform contracts"), so that
the chart tests, which run no service, can check a query against what services
promise to export; tests/e2e/test_dashboard_metrics.py checks the running
services themselves.
"""

import json
import re
from pathlib import Path
from typing import Any

from tests.support.charts import CHARTS

DASHBOARD = CHARTS / "platform" / "dashboards" / "platform.json"

# Sample names the services promise: histograms as their three series,
# counters with _total. Generic ones come from servicekit (every service).
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
CONTRACT_HISTOGRAMS = {
    "gateway": ("gateway_upstream_request_duration_seconds",),
    "identity": (),
    "orders": (),
}
CONTRACT_SAMPLES = {
    "gateway": (
        "gateway_upstream_errors_total",
        "gateway_rate_limit_decisions_total",
        "gateway_rate_limit_backend_errors_total",
        "gateway_circuit_state",
        "gateway_circuit_transitions_total",
        "gateway_jwks_refreshes_total",
        "gateway_token_rejections_total",
    ),
    "identity": (
        "identity_tokens_issued_total",
        "identity_login_attempts_total",
        "identity_throttled_requests_total",
        "identity_signing_key_age_seconds",
    ),
    "orders": (
        "orders_created_total",
        "orders_status_transitions_total",
        "orders_jwks_refreshes_total",
    ),
}


def contract_samples(service: str) -> set[str]:
    """The sample names ``service``'s own metrics.py promises to export."""
    samples = set(CONTRACT_SAMPLES[service])
    for histogram in CONTRACT_HISTOGRAMS[service]:
        samples.update(histogram + suffix for suffix in HISTOGRAM_SUFFIXES)
    return samples


# The sample names a metric family of each type exports (the text format's
# TYPE line names the family; counters are exposed with _total).
_FAMILY_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": HISTOGRAM_SUFFIXES,
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def family_samples(name: str, kind: str) -> set[str]:
    """The sample names a family ``name`` of type ``kind`` exports, with or
    without children yet (a labelled metric with none has only HELP and TYPE).
    """
    return {name + suffix for suffix in _FAMILY_SUFFIXES.get(kind, ("",))}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those folded into collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
)
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan"})


def metric_names(expression: str) -> set[str]:
    """The metric (sample) names a PromQL expression selects.

    Label matchers, ranges, grouping clauses and strings are removed first;
    an identifier followed by ``(`` is a function or an aggregation.
    """
    text = _STRING.sub('""', expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def instantiate(expression: str, variables: dict[str, str]) -> str:
    """``expression`` with Grafana's ``$variables`` replaced, as Grafana sends it."""
    for name in sorted(variables, key=len, reverse=True):
        expression = expression.replace(f"${name}", variables[name])
    return expression
