"""values.schema.json refuses values that cannot work, before anything is
installed, with a message that names the value."""

from typing import Any

import helm_python
import pytest

from tests.support.charts import render, render_platform

BAD_VALUES: list[Any] = [
    pytest.param("identity", {"replicaCount": 0}, "replicaCount", id="no-replicas"),
    pytest.param("identity", {"unknownKey": 1}, "unknownKey", id="unknown-key"),
    pytest.param(
        "identity",
        {"image": {"pullPolicy": "Sometimes"}},
        "pullPolicy",
        id="pull-policy",
    ),
    pytest.param(
        "identity",
        {"securityContext": {"readOnlyRootFilesystem": False}},
        "readOnlyRootFilesystem",
        id="writable-root",
    ),
    pytest.param(
        "identity",
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "allowPrivilegeEscalation",
        id="privilege-escalation",
    ),
    pytest.param(
        "identity",
        {"podSecurityContext": {"runAsNonRoot": False}},
        "runAsNonRoot",
        id="root",
    ),
    pytest.param(
        "identity",
        {"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
        "drop",
        id="capabilities-kept",
    ),
    pytest.param("identity", {"logLevel": "LOUD"}, "logLevel", id="log-level"),
    pytest.param(
        "identity", {"image": {"digest": "latest"}}, "digest", id="digest-not-sha256"
    ),
    pytest.param(
        "identity", {"keyEncryptionKey": "c2hvcnQ="}, "keyEncryptionKey", id="short-key"
    ),
    pytest.param(
        "identity",
        {"database": {"url": "mysql://u:p@h/db"}},
        "database",
        id="not-postgresql",
    ),
    pytest.param("identity", {"issuer": "not a url"}, "issuer", id="issuer-not-url"),
    pytest.param("identity", {"service": {"port": 70000}}, "port", id="port-range"),
    # null removes a default key in Helm, as `--set resources.limits=null` does.
    pytest.param("identity", {"resources": {"limits": None}}, "limits", id="no-limits"),
    pytest.param(
        "identity",
        {"metrics": {"serviceMonitor": {"mode": "maybe"}}},
        "mode",
        id="monitor-mode",
    ),
    pytest.param(
        "identity",
        {"podDisruptionBudget": {"maxUnavailable": 0}},
        "maxUnavailable",
        id="pdb-blocks-drains",
    ),
    pytest.param(
        "identity",
        {"clientSecrets": {"web": "short"}},
        "clientSecrets",
        id="weak-client-secret",
    ),
    pytest.param(
        "orders",
        {"autoscaling": {"targetCPUUtilizationPercentage": 150}},
        "targetCPUUtilizationPercentage",
        id="hpa-target",
    ),
    pytest.param("orders", {"audience": ""}, "audience", id="empty-audience"),
    pytest.param(
        "gateway", {"ingress": {"host": "Bad_Host"}}, "host", id="ingress-host"
    ),
    pytest.param(
        "gateway",
        {"ingress": {"pathType": "Regex"}},
        "pathType",
        id="ingress-path-type",
    ),
    pytest.param(
        "gateway", {"redis": {"url": "http://redis:6379"}}, "redis", id="redis-scheme"
    ),
    pytest.param(
        "gateway",
        {"routes": [{"prefix": "no-slash", "upstream": "orders"}]},
        "prefix",
        id="route-prefix",
    ),
    pytest.param(
        "gateway",
        {
            "routes": [
                {"prefix": "/o", "upstream": "orders", "auth": {"required": True}}
            ]
        },
        "audience",
        id="route-auth-without-audience",
    ),
    pytest.param(
        "gateway",
        {"routes": [{"prefix": "/o", "upstream": "orders", "timeouts": {"read": 0}}]},
        "read",
        id="route-timeout",
    ),
    pytest.param(
        "gateway",
        {"rateLimits": {"default": {"capacity": 0, "refill_per_second": 1}}},
        "capacity",
        id="rate-limit-capacity",
    ),
    pytest.param(
        "gateway",
        {"otel": {"protocol": "carrier-pigeon"}},
        "protocol",
        id="otel-protocol",
    ),
    pytest.param(
        "gateway",
        {
            "routes": [
                {
                    "prefix": "/o",
                    "upstream": "orders",
                    "auth": {
                        "required": True,
                        "audience": "orders",
                        "method_scopes": {"post": ["orders:write"]},
                    },
                }
            ]
        },
        "'post' does not match pattern",
        id="route-method-in-lower-case",
    ),
    pytest.param(
        "gateway",
        {"upstreamPolicies": {"orders": {"ca_file": "relative/ca.crt"}}},
        "ca_file",
        id="relative-ca-file",
    ),
    pytest.param(
        "gateway", {"upstreamTLS": {"secret": "ca"}}, "secret", id="upstream-tls-key"
    ),
]


@pytest.mark.parametrize(("chart", "values", "named"), BAD_VALUES)
def test_bad_values_are_refused_naming_the_value(chart, values, named):
    with pytest.raises(helm_python.HelmError) as caught:
        render(chart, values)

    message = str(caught.value)
    assert "values don't meet the specifications of the schema" in message
    assert named in message


def test_the_umbrella_checks_each_subchart_with_its_schema():
    with pytest.raises(helm_python.HelmError) as caught:
        render_platform({"orders": {"replicaCount": -1}})

    assert "orders" in str(caught.value)
    assert "replicaCount" in str(caught.value)


def test_the_umbrella_needs_a_public_issuer_url():
    with pytest.raises(helm_python.HelmError) as caught:
        render_platform({"global": {"issuer": "localhost:8080"}})

    assert "issuer" in str(caught.value)


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("identity", {"podDisruptionBudget": {"maxUnavailable": "25%"}}),
        ("identity", {"logLevel": "debug"}),
        ("gateway", {"ingress": {"host": "*.example.com"}}),
        ("orders", {"database": {"url": "postgres://o:p@db:5432/orders"}}),
        (
            "gateway",
            {
                "routes": [
                    {
                        "prefix": "/orders",
                        "upstream": "orders",
                        "auth": {
                            "required": True,
                            "audience": "orders",
                            "method_scopes": {
                                "GET": ["orders:read"],
                                "POST": ["orders:write"],
                            },
                        },
                    }
                ]
            },
        ),
    ],
)
def test_good_values_pass(chart, values):
    assert render(chart, values)
