"""The charts lint clean, render for default and other values, produce objects
valid for Kubernetes 1.33 and 1.37, and refuse values that cannot work."""

from typing import Any

import helm_python
import kubernetes_validate
import pytest

from tests.support.charts import (
    ALL_CHARTS,
    CHARTS,
    REQUIRED_VALUES,
    SERVICE_CHARTS,
    dev_values,
    merged,
    render,
    render_files,
    render_platform,
)

KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]

# Kinds whose schemas come from CRDs that kubernetes-validate does not ship;
# test_wiring checks their fields.
CUSTOM_KINDS = {"ServiceMonitor", "HTTPRoute"}

NON_DEFAULT_VALUES: dict[str, Any] = {
    "identity": {
        "replicaCount": 3,
        "existingSecret": "identity-secrets",
        "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
        "metrics": {"serviceMonitor": {"mode": "always", "labels": {"team": "a"}}},
        "otel": {
            "exporterEndpoint": "http://otel-collector.observability:4318",
            "tracesSampler": "parentbased_traceidratio",
            "tracesSamplerArg": "0.25",
            "resourceAttributes": {"deployment.environment": "staging"},
        },
        "networkPolicy": {
            "database": {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "port": 5432},
            "metricsFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
        },
        "clients": [{"client_id": "web", "redirect_uris": ["https://e.com/cb"]}],
        "topologySpread": {"enabled": False},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "podDisruptionBudget": {"maxUnavailable": "50%"},
    },
    "orders": {
        "migrations": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "tests": {"enabled": False},
        "serviceAccount": {"create": False, "name": "orders-runtime"},
        "audience": "https://api.example.com/orders",
    },
    "gateway": {
        "redis": {"url": "redis://:pw@redis.example.com:6379/0"},
        "ingress": {
            "className": "cloud-provider-kind",
            "host": "platform.example.com",
            "tls": {"enabled": True, "secretName": "platform-tls"},
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        },
        "httpRoute": {
            "enabled": True,
            "parentRefs": [{"name": "eg", "namespace": "gateways"}],
            "hostnames": ["platform.example.com"],
        },
        "networkPolicy": {
            "ingressFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "ingress"}
                    }
                }
            ]
        },
        "extraUpstreams": {"billing": "https://billing.billing:8443"},
        "upstreamPolicies": {"billing": {"ca_file": "/etc/gateway-tls/ca.crt"}},
        "upstreamTLS": {"secretName": "billing-ca"},
        "routes": [
            {"prefix": "/auth", "upstream": "identity", "strip_prefix": True},
            {"prefix": "/orders", "upstream": "orders"},
            {"prefix": "/billing", "upstream": "billing"},
        ],
        "corsOrigins": ["https://app.example.com"],
    },
    "platform": {
        "global": {"componentNames": {"identity": "", "orders": "", "gateway": ""}}
    },
}


def _renderings() -> list[Any]:
    cases = []
    for chart in SERVICE_CHARTS:
        cases.append(pytest.param(chart, {}, id=f"{chart}-defaults"))
        cases.append(
            pytest.param(chart, NON_DEFAULT_VALUES[chart], id=f"{chart}-non-default")
        )
    cases.append(pytest.param("platform", dev_values(), id="platform-dev"))
    cases.append(
        pytest.param(
            "platform",
            merged(dev_values(), NON_DEFAULT_VALUES["platform"]),
            id="platform-release-prefixed-names",
        )
    )
    return cases


@pytest.mark.parametrize("chart", ALL_CHARTS)
@pytest.mark.parametrize("kube_version", ["v1.33.0", "v1.37.0"])
def test_every_chart_lints_clean(chart, kube_version):
    values = merged(REQUIRED_VALUES[chart], dev_values() if chart == "platform" else {})

    report = helm_python.lint(
        str(CHARTS / chart), values, strict=True, kube_version=kube_version
    )

    # Severity 1 is "info" (an icon is recommended); warnings and errors fail.
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert findings == []
    assert report["errors"] == []


@pytest.mark.parametrize(("chart", "values"), _renderings())
@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(chart, values, kube_version):
    manifests = render(chart, values)

    assert manifests, "the chart rendered nothing"
    for manifest in manifests:
        if manifest.kind in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(manifest.body, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{manifest.template} {manifest.kind}/{manifest.name}: {where}: {exc.message}"
            )


@pytest.mark.parametrize(
    ("chart", "missing", "message"),
    [
        (
            "identity",
            "database",
            "set database.url (postgresql://...) or existingSecret",
        ),
        (
            "identity",
            "keyEncryptionKey",
            "set keyEncryptionKey (head -c 32 /dev/urandom | base64) or existingSecret",
        ),
        ("orders", "database", "set database.url (postgresql://...) or existingSecret"),
        (
            "gateway",
            "issuer",
            "set issuer (or global.issuer): the public URL of identity, e.g. https://example.com/auth",
        ),
    ],
)
def test_a_missing_value_without_safe_default_stops_the_install(
    chart, missing, message
):
    values = {
        key: value for key, value in REQUIRED_VALUES[chart].items() if key != missing
    }

    with pytest.raises(helm_python.HelmError) as caught:
        helm_python.Chart.load(str(CHARTS / chart)).render(
            values, name="platform", namespace="platform"
        )

    assert message in str(caught.value)


def test_an_existing_secret_replaces_the_chart_secret_and_needs_no_secret_values():
    values = {"issuer": "https://example.com/auth", "existingSecret": "made-by-vault"}
    manifests = helm_python.Chart.load(str(CHARTS / "identity")).render(
        values, name="platform", namespace="platform"
    )

    text = "\n".join(manifests.values())
    assert "kind: Secret" not in text
    assert "name: made-by-vault" in text


def test_the_umbrella_names_components_plainly_by_default():
    names = {
        (m.kind, m.name)
        for m in render_platform()
        if m.kind in ("Deployment", "Service")
    }

    assert names == {
        (kind, name)
        for kind in ("Deployment", "Service")
        for name in ("identity", "orders", "gateway")
    }


def test_the_umbrella_can_prefix_names_with_the_release():
    names = {
        m.name
        for m in render_platform(NON_DEFAULT_VALUES["platform"], release="blue")
        if m.kind == "Deployment"
    }

    assert names == {"blue-identity", "blue-orders", "blue-gateway"}


def test_the_umbrella_can_leave_a_service_out():
    manifests = render_platform({"orders": {"enabled": False}})

    assert {m.name for m in manifests if m.kind == "Deployment"} == {
        "identity",
        "gateway",
    }


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_notes_tell_how_to_reach_and_test_the_release(chart):
    notes = render_files(chart)[f"{chart}/templates/NOTES.txt"]

    assert "helm test platform -n platform" in notes
    assert f"rollout status deployment/platform-{chart}" in notes
