"""Policies every workload of the charts must meet, checked on rendered objects:
security contexts, probes, resources, labels, selectors and ports."""

import re
from typing import Any

import pytest

from tests.support.charts import (
    CHARTS,
    SERVICE_CHARTS,
    SERVICE_PORTS,
    Manifest,
    component,
    container_env,
    find,
    of_kind,
    pod_specs,
    render,
    render_platform,
)

# The one writable place: an emptyDir the pod owns, not the host's /tmp.
TMP = "/tmp"  # noqa: S108

RECOMMENDED_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
}


@pytest.fixture(scope="module")
def platform() -> list[Manifest]:
    return render_platform()


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_pod_runs_non_root_with_seccomp_and_no_service_account_token(platform):
    specs = pod_specs(platform)

    assert len(specs) == 8  # 3 servers, 2 migration Jobs, 3 test pods
    for manifest, spec in specs:
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, manifest.name
        assert context["runAsUser"] == 10001, manifest.name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, manifest.name
        assert spec["automountServiceAccountToken"] is False, manifest.name


def test_every_container_is_read_only_unprivileged_and_drops_all_capabilities(
    platform,
):
    for manifest, spec in pod_specs(platform):
        for container in _containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, manifest.name
            assert context["allowPrivilegeEscalation"] is False, manifest.name
            assert context["privileged"] is False, manifest.name
            assert context["runAsNonRoot"] is True, manifest.name
            assert context["capabilities"] == {"drop": ["ALL"]}, manifest.name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_only_writable_place_is_a_bounded_tmp(platform):
    for manifest, spec in pod_specs(platform):
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["tmp"]["emptyDir"]["sizeLimit"] == "64Mi", manifest.name
        for container in _containers(spec):
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert mounts[TMP]["name"] == "tmp"
            writable = [
                path
                for path, mount in mounts.items()
                if not mount.get("readOnly") and path != TMP
            ]
            assert writable == [], f"{manifest.name} writes to {writable}"


def test_every_container_has_requests_and_limits(platform):
    for manifest, spec in pod_specs(platform):
        for container in _containers(spec):
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), manifest.name
            assert {"cpu", "memory"} <= resources["limits"].keys(), manifest.name


def test_servers_probe_startup_and_liveness_on_healthz_and_readiness_on_readyz(
    platform,
):
    for deployment in of_kind(platform, "Deployment"):
        (container,) = deployment.body["spec"]["template"]["spec"]["containers"]
        probes = {
            name: container[f"{name}Probe"]["httpGet"]
            for name in ("startup", "readiness", "liveness")
        }

        assert probes == {
            "startup": {"path": "/healthz", "port": "http"},
            "readiness": {"path": "/readyz", "port": "http"},
            "liveness": {"path": "/healthz", "port": "http"},
        }
        # The startup probe gives a slow start a minute before liveness may kill it.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_images_are_never_pulled_always_so_kind_and_minikube_loads_work(platform):
    for manifest, spec in pod_specs(platform):
        for container in _containers(spec):
            assert container["imagePullPolicy"] == "IfNotPresent", manifest.name
            name = component(manifest)
            assert container["image"] == f"platform/{name}:0.1.0"


def test_one_uvicorn_process_per_container_and_host_is_every_interface(platform):
    for deployment in of_kind(platform, "Deployment"):
        name = component(deployment)
        (container,) = deployment.body["spec"]["template"]["spec"]["containers"]
        config = find(platform, "ConfigMap", name).body["data"]

        assert container["args"] == ["serve"]
        assert "command" not in container  # the image's `python -m <svc>`
        assert config[f"{name.upper()}_HOST"] == "0.0.0.0"  # noqa: S104
        assert config[f"{name.upper()}_PORT"] == str(SERVICE_PORTS[name])


def test_every_object_carries_the_recommended_labels(platform):
    for manifest in platform:
        missing = RECOMMENDED_LABELS - manifest.labels.keys()
        assert not missing, f"{manifest.kind}/{manifest.name} lacks {missing}"
        assert manifest.labels["app.kubernetes.io/part-of"] == "platform"
        assert manifest.labels["app.kubernetes.io/instance"] == "platform"
        assert manifest.labels["app.kubernetes.io/managed-by"] == "Helm"


def test_selectors_match_the_pod_labels_they_select(platform):
    pods = {
        m.name: m.body["spec"]["template"]["metadata"]["labels"]
        for m in of_kind(platform, "Deployment")
    }
    for deployment in of_kind(platform, "Deployment"):
        selector = deployment.body["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pods[deployment.name].items()
        # Selectors are immutable: nothing in them may change between releases.
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }
    for kind, path in (
        ("Service", ("spec", "selector")),
        ("PodDisruptionBudget", ("spec", "selector", "matchLabels")),
    ):
        for manifest in of_kind(platform, kind):
            selector = manifest.body[path[0]][path[1]]
            if len(path) == 3:
                selector = selector[path[2]]
            matched = [
                n for n, labels in pods.items() if selector.items() <= labels.items()
            ]
            assert matched == [manifest.name], (
                f"{kind}/{manifest.name} selects {matched}"
            )


def test_service_target_ports_are_container_ports(platform):
    for service in of_kind(platform, "Service"):
        deployment = find(platform, "Deployment", service.name)
        (container,) = deployment.body["spec"]["template"]["spec"]["containers"]
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}

        ports = {p["name"]: p for p in service.body["spec"]["ports"]}
        assert set(ports) == {"http", "metrics"}
        for name, port in ports.items():
            assert port["targetPort"] in container_ports, f"{service.name}:{name}"
        name = component(service)
        assert ports["http"]["port"] == SERVICE_PORTS[name]
        assert container_ports["http"] == SERVICE_PORTS[name]
        # Metrics on port + 1000, never on the public port.
        assert container_ports["metrics"] == SERVICE_PORTS[name] + 1000


def test_service_accounts_exist_and_never_mount_tokens(platform):
    accounts = {m.name: m.body for m in of_kind(platform, "ServiceAccount")}

    assert set(accounts) == set(SERVICE_CHARTS)
    for deployment in of_kind(platform, "Deployment"):
        spec = deployment.body["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == deployment.name
        assert accounts[deployment.name]["automountServiceAccountToken"] is False


def test_disruption_budgets_allow_one_pod_down_and_autoscaling_is_off(platform):
    budgets = of_kind(platform, "PodDisruptionBudget")

    assert {b.name for b in budgets} == set(SERVICE_CHARTS)
    assert all(b.body["spec"]["maxUnavailable"] == 1 for b in budgets)
    assert of_kind(platform, "HorizontalPodAutoscaler") == []


def test_autoscaling_when_enabled_owns_the_replica_count():
    manifests = render(
        "orders",
        {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}},
    )

    hpa = find(manifests, "HorizontalPodAutoscaler").body
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "platform-orders",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert "replicas" not in find(manifests, "Deployment").body["spec"]


def test_pods_spread_over_zones_and_nodes_without_blocking_a_one_node_cluster(
    platform,
):
    for deployment in of_kind(platform, "Deployment"):
        spec = deployment.body["spec"]["template"]["spec"]
        constraints = spec["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in constraints] == [
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        ]
        labels = deployment.body["spec"]["selector"]["matchLabels"]
        for constraint in constraints:
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
            assert constraint["labelSelector"]["matchLabels"] == labels


def test_the_grace_period_outlasts_the_drain(platform):
    for deployment in of_kind(platform, "Deployment"):
        name = component(deployment)
        spec = deployment.body["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        drain = int(
            find(platform, "ConfigMap", name).body["data"][
                f"{name.upper()}_GRACEFUL_SHUTDOWN_SECONDS"
            ]
        )
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]

        assert spec["terminationGracePeriodSeconds"] > pre_stop + drain


def _checksums(manifests: list[Manifest], name: str) -> dict[str, str]:
    deployment = find(manifests, "Deployment", name)
    annotations = deployment.body["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


@pytest.mark.parametrize(
    ("name", "change", "checksum"),
    [
        ("identity", {"identity": {"logLevel": "DEBUG"}}, "checksum/config"),
        (
            "identity",
            {"identity": {"keyEncryptionKey": "B" * 43 + "="}},
            "checksum/secret",
        ),
        ("identity", {"identity": {"clients": [{"client_id": "x"}]}}, "checksum/files"),
        ("orders", {"orders": {"audience": "other"}}, "checksum/config"),
        (
            "gateway",
            {"gateway": {"routes": [{"prefix": "/a", "upstream": "orders"}]}},
            "checksum/files",
        ),
        (
            "gateway",
            {"gateway": {"redis": {"url": "redis://other:6379/0"}}},
            "checksum/secret",
        ),
    ],
)
def test_a_configuration_change_rolls_the_pods_through_a_checksum(
    platform, name, change, checksum
):
    before = _checksums(platform, name)
    after = _checksums(render_platform(change), name)

    assert before[checksum] != after[checksum]
    unchanged = {k for k in before if k != checksum}
    assert {k: before[k] for k in unchanged} == {k: after[k] for k in unchanged}


def test_open_telemetry_names_the_service_and_the_pod_through_the_downward_api():
    values = {"otel": {"exporterEndpoint": "http://collector.obs:4318"}}
    manifests = render("orders", values)
    config = find(manifests, "ConfigMap", "platform-orders").body["data"]
    (container,) = find(manifests, "Deployment").body["spec"]["template"]["spec"][
        "containers"
    ]
    env = container_env(container)

    assert config["OTEL_SERVICE_NAME"] == "orders"
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.obs:4318"
    assert env["K8S_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["K8S_NAMESPACE_NAME"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    attributes = env["OTEL_RESOURCE_ATTRIBUTES"]
    assert "k8s.pod.name=$(K8S_POD_NAME)" in attributes
    assert "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" in attributes
    # $(VAR) only expands variables defined earlier in the list.
    names = [item["name"] for item in container["env"]]
    assert names.index("K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")


def test_no_exporter_is_configured_unless_an_endpoint_is_given(platform):
    for config in of_kind(platform, "ConfigMap"):
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in config.body.get("data", {})


def test_secrets_are_never_generated_or_looked_up():
    # lookup sees nothing under skaffold and `helm template`, and random
    # functions give a new key on every deploy: both would rotate secrets.
    forbidden = re.compile(
        r"\b(lookup|randAlphaNum|randAlpha|randAscii|randBytes|genPrivateKey|genCA)\b"
    )
    comment = re.compile(r"{{-?\s*/\*.*?\*/\s*-?}}", re.S)
    action = re.compile(r"{{.*?}}", re.S)
    templates = [t for t in CHARTS.glob("*/templates/**/*") if t.is_file()]

    assert len(templates) > 30
    for template in templates:
        code = action.findall(comment.sub("", template.read_text()))
        assert not [a for a in code if forbidden.search(a)], template


def test_secret_values_reach_pods_only_through_secret_references(platform):
    for manifest, spec in pod_specs(platform):
        for container in _containers(spec):
            for name, value in container_env(container).items():
                if name.endswith(
                    ("_DATABASE_URL", "_REDIS_URL", "_KEY_ENCRYPTION_KEY")
                ):
                    assert set(value) == {"secretKeyRef"}, f"{manifest.name} {name}"
    for config in of_kind(platform, "ConfigMap"):
        text = str(config.body)
        assert "dev-only-demo-service-secret" not in text
        assert "postgresql://" not in text


def test_service_links_are_off_so_they_cannot_shadow_settings(platform):
    # With service links a Service named "identity" injects
    # IDENTITY_PORT=tcp://10.x.x.x:8000 into every pod, which is not a port
    # number: identity would refuse to start on its own setting's name.
    for manifest, spec in pod_specs(platform):
        assert spec["enableServiceLinks"] is False, manifest.name


def test_an_image_can_be_pinned_by_digest():
    digest = "sha256:" + "ab" * 32
    manifests = render("gateway", {"image": {"digest": digest}})

    for manifest, spec in pod_specs(manifests):
        for container in _containers(spec):
            assert container["image"] == f"platform/gateway@{digest}", manifest.name
