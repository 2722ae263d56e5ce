"""The NetworkPolicies (the charts' and the dev backing services') allow
exactly the platform's paths and nothing else."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.network_model import NetworkModel, Pod, pod
from tests.support.charts import (
    REPOSITORY,
    Manifest,
    of_kind,
    pod_specs,
    render_platform,
)

NAMESPACE = "platform"
DEV_MANIFESTS = [
    REPOSITORY / "k8s/dev/postgresql.yaml",
    REPOSITORY / "k8s/dev/redis.yaml",
]


def _dev_objects() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in DEV_MANIFESTS:
        objects.extend(d for d in yaml.safe_load_all(Path(path).read_text()) if d)
    return objects


def _chart_pods(manifests: list[Manifest]) -> list[Pod]:
    pods = []
    for manifest, spec in pod_specs(manifests):
        labels = (
            manifest.body["metadata"]["labels"]
            if manifest.kind == "Pod"
            else manifest.body["spec"]["template"]["metadata"]["labels"]
        )
        ports = {
            p["name"]: p["containerPort"]
            for c in spec["containers"]
            for p in c.get("ports", [])
        }
        role = labels["app.kubernetes.io/component"]
        name = labels["app.kubernetes.io/name"]
        pods.append(pod(f"{name}-{role}", NAMESPACE, labels, ports))
    return pods


def _dev_pods() -> list[Pod]:
    pods = []
    for document in _dev_objects():
        if document["kind"] != "Deployment":
            continue
        template = document["spec"]["template"]
        ports = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c["ports"]
        }
        pods.append(
            pod(
                document["metadata"]["name"],
                NAMESPACE,
                template["metadata"]["labels"],
                ports,
            )
        )
    return pods


OUTSIDE = pod("ingress-controller", "ingress", {"app": "controller"})
KUBE_DNS = pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
NEIGHBOUR = pod("neighbour", NAMESPACE, {"app": "something-else"})


def _connections(manifests: list[Manifest]) -> set[tuple[str, str, int]]:
    """Every (source, destination, port) the policies allow among our pods."""
    policies = [m.body for m in of_kind(manifests, "NetworkPolicy")]
    policies += [d for d in _dev_objects() if d["kind"] == "NetworkPolicy"]
    model = NetworkModel(policies)
    ours = _chart_pods(manifests) + _dev_pods()
    everyone = [*ours, OUTSIDE, KUBE_DNS, NEIGHBOUR]

    allowed = set()
    for source in everyone:
        for destination in everyone:
            if source is destination or (
                source not in ours and destination not in ours
            ):
                continue
            for _, port in destination.ports:
                if model.allows(source, destination, port):
                    allowed.add((source.name, destination.name, port))
    return allowed


# The gateway's port is the public entry, open to every pod by default (the
# ingress controller, wherever it runs); every pod of the charts resolves
# names; nothing else enters or leaves.
EXPECTED = {
    ("ingress-controller", "gateway-server", 8080),
    ("neighbour", "gateway-server", 8080),
    ("kube-dns", "gateway-server", 8080),
    ("gateway-test", "gateway-server", 8080),
    ("gateway-server", "identity-server", 8000),
    ("gateway-server", "orders-server", 8001),
    ("orders-server", "identity-server", 8000),
    ("identity-test", "identity-server", 8000),
    ("orders-test", "orders-server", 8001),
    ("identity-server", "postgresql", 5432),
    ("identity-migrations", "postgresql", 5432),
    ("orders-server", "postgresql", 5432),
    ("orders-migrations", "postgresql", 5432),
    ("gateway-server", "redis", 6379),
} | {
    (f"{name}-{role}", "kube-dns", 53)
    for name, roles in {
        "identity": ("server", "migrations", "test"),
        "orders": ("server", "migrations", "test"),
        "gateway": ("server", "test"),
    }.items()
    for role in roles
}


def test_the_policies_allow_exactly_the_platform_paths():
    allowed = _connections(render_platform())

    assert allowed - EXPECTED == set(), "allowed but not needed"
    assert EXPECTED - allowed == set(), "needed but denied"


def test_metrics_are_reachable_only_from_the_peers_named_for_scraping():
    monitoring = pod("prometheus", "monitoring", {"app": "prometheus"})
    scrape_from = [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
            }
        }
    ]
    values = {
        name: {"networkPolicy": {"metricsFrom": scrape_from}}
        for name in ("identity", "orders", "gateway")
    }
    manifests = render_platform(values)
    model = NetworkModel([m.body for m in of_kind(manifests, "NetworkPolicy")])
    servers = [p for p in _chart_pods(manifests) if p.name.endswith("-server")]

    for server in servers:
        metrics = server.port_number("metrics")
        assert metrics is not None
        assert model.allows(monitoring, server, metrics), server.name
        assert not model.allows(OUTSIDE, server, metrics), server.name


def test_the_gateway_can_be_limited_to_the_ingress_controller():
    values = {
        "gateway": {
            "networkPolicy": {
                "ingressFrom": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "ingress"}
                        }
                    }
                ]
            }
        }
    }

    allowed = _connections(render_platform(values))

    assert ("ingress-controller", "gateway-server", 8080) in allowed
    assert ("neighbour", "gateway-server", 8080) not in allowed
    assert ("gateway-test", "gateway-server", 8080) in allowed


def test_without_redis_the_gateway_has_no_path_to_it():
    allowed = _connections(render_platform({"gateway": {"redis": {"url": ""}}}))

    assert ("gateway-server", "redis", 6379) not in allowed


@pytest.mark.parametrize("name", ["identity", "orders", "gateway"])
def test_every_chart_starts_from_deny_all(name):
    manifests = render_platform()
    deny = next(
        m
        for m in of_kind(manifests, "NetworkPolicy")
        if m.name == f"{name}-default-deny"
    )

    assert deny.body["spec"] == {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/instance": "platform",
            }
        },
        "policyTypes": ["Ingress", "Egress"],
    }


def test_policies_can_be_turned_off():
    manifests = render_platform(
        {
            n: {"networkPolicy": {"enabled": False}}
            for n in ("identity", "orders", "gateway")
        }
    )

    assert of_kind(manifests, "NetworkPolicy") == []
