"""The dev backing services (k8s/dev), the namespace and compose.yaml agree with
what the charts render, so the same configuration works everywhere."""

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.charts import (
    REPOSITORY,
    SERVICE_CHARTS,
    SERVICE_PORTS,
    find,
    of_kind,
    render_platform,
)

K8S_FILES = ["k8s/namespace.yaml", "k8s/dev/postgresql.yaml", "k8s/dev/redis.yaml"]


def _load(path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((REPOSITORY / path).read_text()) if d]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPOSITORY / "compose.yaml").read_text())
    return loaded


@pytest.mark.parametrize("path", K8S_FILES)
@pytest.mark.parametrize("kube_version", ["1.33.0", "1.37.0"])
def test_dev_manifests_are_valid_kubernetes(path, kube_version):
    for document in _load(path):
        kubernetes_validate.validate(document, kube_version, strict=True)


def test_the_namespace_enforces_the_restricted_pod_security_profile():
    (namespace,) = _load("k8s/namespace.yaml")

    assert namespace["metadata"]["name"] == "platform"
    assert (
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )


@pytest.mark.parametrize("path", ["k8s/dev/postgresql.yaml", "k8s/dev/redis.yaml"])
def test_dev_backing_services_meet_the_restricted_profile_too(path):
    (deployment,) = [d for d in _load(path) if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Official images, as a laptop cluster pulls them.
    assert container["image"].split(":")[0] in ("postgres", "redis")


def test_dev_service_names_are_the_ones_the_dev_values_point_at():
    services = {
        d["metadata"]["name"]
        for path in K8S_FILES
        for d in _load(path)
        if d["kind"] == "Service"
    }
    secrets = {
        m.name: m.body["stringData"]
        for m in of_kind(render_platform(), "Secret")
        if m.name in SERVICE_CHARTS
    }

    assert services == {"postgresql", "redis"}
    assert (
        "@postgresql.platform.svc.cluster.local:5432/"
        in secrets["identity"]["database-url"]
    )
    assert (
        "@postgresql.platform.svc.cluster.local:5432/"
        in secrets["orders"]["database-url"]
    )
    assert (
        secrets["gateway"]["redis-url"]
        == "redis://redis.platform.svc.cluster.local:6379/0"
    )


def test_postgres_init_is_the_same_for_compose_and_the_cluster():
    (config,) = [
        d for d in _load("k8s/dev/postgresql.yaml") if d["kind"] == "ConfigMap"
    ]

    assert (
        config["data"]["init.sql"]
        == (REPOSITORY / "compose/postgres-init.sql").read_text()
    )


def test_compose_containers_answer_to_their_cluster_dns_names(compose):
    for name in (*SERVICE_CHARTS, "postgresql", "redis"):
        aliases = compose["services"][name]["networks"]["platform"]["aliases"]
        assert aliases == [f"{name}.platform.svc.cluster.local"]


def test_compose_configures_each_service_as_the_chart_does(compose):
    manifests = render_platform()
    for name in SERVICE_CHARTS:
        chart_config = find(manifests, "ConfigMap", name).body["data"]
        chart_secret = find(manifests, "Secret", name).body["stringData"]
        environment = compose["services"][name]["environment"]

        for key, value in chart_config.items():
            assert environment[key] == value, f"{name} {key}"
        prefix = name.upper()
        for key, secret_key in (
            (f"{prefix}_DATABASE_URL", "database-url"),
            (f"{prefix}_KEY_ENCRYPTION_KEY", "key-encryption-key"),
            (f"{prefix}_REDIS_URL", "redis-url"),
        ):
            if secret_key in chart_secret:
                assert environment[key] == chart_secret[secret_key], f"{name} {key}"


def test_compose_mounts_the_files_the_charts_render(compose):
    manifests = render_platform()
    routes = yaml.safe_load(
        find(manifests, "ConfigMap", "gateway-routes").body["data"]["routes.yaml"]
    )
    clients = yaml.safe_load(
        find(manifests, "ConfigMap", "identity-clients").body["data"]["clients.yaml"]
    )
    client_secrets = yaml.safe_load(
        find(manifests, "Secret", "identity").body["stringData"]["client-secrets.yaml"]
    )

    assert (
        yaml.safe_load((REPOSITORY / "compose/gateway/routes.yaml").read_text())
        == routes
    )
    assert (
        yaml.safe_load((REPOSITORY / "compose/identity/clients.yaml").read_text())
        == clients
    )
    assert (
        yaml.safe_load(
            (REPOSITORY / "compose/identity/client-secrets.yaml").read_text()
        )
        == client_secrets
    )
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (REPOSITORY / source).is_file(), source


def test_compose_runs_the_images_as_the_cluster_does(compose):
    for name in SERVICE_CHARTS:
        service = compose["services"][name]
        assert service["image"] == f"platform/{name}:dev"
        assert (REPOSITORY / service["build"]["dockerfile"]).is_file()
        assert service["read_only"] is True
        assert service["user"] == "10001:10001"
        assert service["cap_drop"] == ["ALL"]
        assert service["tmpfs"] == ["/tmp:size=64m"]  # noqa: S108
    assert compose["services"]["gateway"]["ports"] == [
        f"{SERVICE_PORTS['gateway']}:8080"
    ]
    for name in ("identity", "orders"):
        migrations = compose["services"][f"{name}-migrations"]
        assert migrations["command"] == ["migrate"]
        assert compose["services"][name]["depends_on"] == {
            f"{name}-migrations": {"condition": "service_completed_successfully"}
        }
