"""skaffold.yaml is a valid skaffold/v4beta14 configuration whose paths exist
and whose values reach the charts."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.charts import CHARTS, REPOSITORY, dev_values, render_platform
from tests.support.programs import unavailable

# The shared schemas sit beside the repository (../shared in CI); a git
# worktree one level deeper finds them further up.
SCHEMA_PATH = Path("shared/schemas/skaffold-v4beta14.json")
SCHEMA = next(
    (p / SCHEMA_PATH for p in REPOSITORY.parents if (p / SCHEMA_PATH).is_file()),
    REPOSITORY.parent / SCHEMA_PATH,
)


@pytest.fixture(scope="module")
def configs() -> dict[str, dict[str, Any]]:
    documents = list(yaml.safe_load_all((REPOSITORY / "skaffold.yaml").read_text()))
    return {d["metadata"]["name"]: d for d in documents}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not SCHEMA.is_file():
        unavailable(f"the skaffold schema is not at {SCHEMA}")
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def test_every_config_is_valid_skaffold_v4beta14(configs, schema):
    validator = jsonschema.Draft7Validator(schema)

    assert set(configs) == {"backing", "platform"}
    for name, config in configs.items():
        assert config["apiVersion"] == "skaffold/v4beta14"
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(config)]
        assert errors == [], name


def test_the_schema_check_catches_a_misspelt_field(configs, schema):
    broken = dict(configs["platform"], deploy={"helm": {"relases": []}})

    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_every_dockerfile_and_chart_named_exists(configs):
    platform = configs["platform"]
    for artifact in platform["build"]["artifacts"]:
        context = REPOSITORY / artifact["context"]
        assert (context / artifact["docker"]["dockerfile"]).is_file(), artifact["image"]
    for release in platform["deploy"]["helm"]["releases"]:
        assert (REPOSITORY / release["chartPath"] / "Chart.yaml").is_file()
        for values in release["valuesFiles"]:
            assert (REPOSITORY / values).is_file()
    for manifest in configs["backing"]["manifests"]["rawYaml"]:
        assert (REPOSITORY / manifest).is_file()


def test_the_platform_waits_for_its_backing_services(configs):
    assert configs["platform"]["requires"] == [{"configs": ["backing"]}]


def test_images_reach_the_charts_through_set_value_templates(configs):
    (release,) = configs["platform"]["deploy"]["helm"]["releases"]
    templates = release["setValueTemplates"]
    images = [a["image"] for a in configs["platform"]["build"]["artifacts"]]

    assert images == ["platform/identity", "platform/orders", "platform/gateway"]
    for image in images:
        service = image.split("/")[1]
        key = re.sub(r"[^A-Za-z0-9]", "_", image)
        assert templates[f"{service}.image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert templates[f"{service}.image.tag"] == f"{{{{.IMAGE_TAG_{key}}}}}"
        # The default repository is the artifact's name, so the chart alone
        # installs what `make deploy` built.
        chart_values = yaml.safe_load((CHARTS / service / "values.yaml").read_text())
        assert chart_values["image"]["repository"] == image


def test_the_helm_deployer_installs_for_real_so_hooks_and_tests_run(configs):
    deploy = configs["platform"]["deploy"]
    (release,) = deploy["helm"]["releases"]

    assert "manifests" not in configs["platform"]  # not rendered with helm template
    assert release["namespace"] == "platform"
    assert release["skipBuildDependencies"] is True
    set_values = release["setValues"]
    assert render_platform(
        {"gateway": {"ingress": {"className": set_values["gateway.ingress.className"]}}}
    )


def test_the_gateway_is_forwarded_to_localhost_8080(configs):
    assert configs["platform"]["portForward"] == [
        {
            "resourceType": "service",
            "resourceName": "gateway",
            "namespace": "platform",
            "port": 8080,
            "localPort": 8080,
        }
    ]
    # The Service skaffold forwards is the one the umbrella names.
    assert {"gateway"} <= {m.name for m in render_platform() if m.kind == "Service"}


def test_kind_and_minikube_profiles_are_activated_by_the_kube_context(configs):
    profiles = {p["name"]: p for p in configs["platform"]["profiles"]}

    assert profiles["kind"]["activation"] == [{"kubeContext": "kind-.*"}]
    assert profiles["minikube"]["activation"] == [{"kubeContext": "minikube"}]
    base = configs["platform"]["build"]["local"]
    for profile in profiles.values():
        # Loaded into the cluster, never pushed; the rest as the base says.
        assert profile["build"]["local"] == {**base, "push": False}
    (patch,) = profiles["minikube"]["patches"]
    assert (
        patch["path"] == "/deploy/helm/releases/0/setValues/gateway.ingress.className"
    )


def test_the_kind_cluster_is_named_for_the_kind_profile():
    config = yaml.safe_load((REPOSITORY / "k8s/kind-config.yaml").read_text())

    assert config["kind"] == "Cluster"
    assert re.fullmatch("kind-.*", f"kind-{config['name']}")
    assert config["name"] == "platform"


def test_dev_values_install_the_umbrella():
    assert Path(REPOSITORY / "k8s/values-dev.yaml").is_file()
    assert render_platform(dev_values())
