"""The Helm charts rendered by Helm's own engine (helm-python-sdk), as data.

No helm binary and no cluster: ``helm_python`` binds Helm's Go SDK, so what
these helpers return is what ``helm template`` would print.
"""

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
CHARTS = REPOSITORY / "charts"
SERVICE_CHARTS = ("identity", "orders", "gateway")
ALL_CHARTS = (*SERVICE_CHARTS, "platform")
DEV_VALUES_FILE = REPOSITORY / "k8s" / "values-dev.yaml"
SERVICE_PORTS = {"identity": 8000, "orders": 8001, "gateway": 8080}

# What each service chart needs before it renders at all: the values that
# have no safe default (a public URL, a database, a key).
REQUIRED_VALUES: dict[str, dict[str, Any]] = {
    "identity": {
        "issuer": "https://example.com/auth",
        "database": {"url": "postgresql://identity:pw@db.example.com:5432/identity"},
        "keyEncryptionKey": "Po83FDvOSNC6sqETPJZQzJ3UIQFwfW9CfDn+7yU4gSA=",
    },
    "orders": {
        "issuer": "https://example.com/auth",
        "database": {"url": "postgresql://orders:pw@db.example.com:5432/orders"},
    },
    "gateway": {"issuer": "https://example.com/auth"},
    "platform": {},
}


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object rendered from one template file."""

    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("annotations") or {})

    @property
    def is_hook(self) -> bool:
        return "helm.sh/hook" in self.annotations


def _chart(name: str) -> helm_python.Chart:
    # Loaded afresh each time: rendering prunes subcharts whose condition is
    # false from the loaded chart itself, so a shared one would remember.
    return helm_python.Chart.load(str(CHARTS / name))


def dev_values() -> dict[str, Any]:
    """k8s/values-dev.yaml, what `make deploy` and skaffold install."""
    loaded: dict[str, Any] = yaml.safe_load(DEV_VALUES_FILE.read_text())
    return loaded


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, recursively (as Helm merges -f files)."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def render_files(
    chart: str,
    values: dict[str, Any] | None = None,
    *,
    release: str = "platform",
    namespace: str = "platform",
) -> dict[str, str]:
    """Every rendered template's text, by template path (NOTES.txt included)."""
    with _chart(chart) as loaded:
        return loaded.render(
            merged(REQUIRED_VALUES[chart], values or {}),
            name=release,
            namespace=namespace,
            is_install=True,
        )


def render(
    chart: str,
    values: dict[str, Any] | None = None,
    *,
    release: str = "platform",
    namespace: str = "platform",
) -> list[Manifest]:
    """The chart's objects, as ``helm template`` would produce them."""
    manifests = []
    files = render_files(chart, values, release=release, namespace=namespace)
    for template, text in sorted(files.items()):
        if template.endswith("NOTES.txt"):
            continue
        for body in yaml.safe_load_all(text):
            if body:
                manifests.append(Manifest(template, body))
    return manifests


def render_platform(
    values: dict[str, Any] | None = None,
    *,
    release: str = "platform",
    namespace: str = "platform",
) -> list[Manifest]:
    """The umbrella with the dev values plus ``values``."""
    return render(
        "platform",
        merged(dev_values(), values or {}),
        release=release,
        namespace=namespace,
    )


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of ``kind`` (and ``name``), or a failure listing what exists."""
    matches = [
        m for m in manifests if m.kind == kind and (name is None or m.name == name)
    ]
    if len(matches) != 1:
        present = sorted(f"{m.kind}/{m.name}" for m in manifests)
        raise AssertionError(f"expected one {kind} {name or ''}, found {present}")
    return matches[0]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind]


def component(manifest: Manifest) -> str:
    """Which chart a manifest came from: identity, orders or gateway."""
    return str(manifest.labels["app.kubernetes.io/name"])


def pod_specs(manifests: list[Manifest]) -> list[tuple[Manifest, dict[str, Any]]]:
    """Every pod spec: Deployments' and Jobs' templates and bare Pods."""
    specs = []
    for manifest in manifests:
        if manifest.kind in ("Deployment", "Job"):
            specs.append((manifest, manifest.body["spec"]["template"]["spec"]))
        elif manifest.kind == "Pod":
            specs.append((manifest, manifest.body["spec"]))
    return specs


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env list as name -> value (or valueFrom)."""
    return {
        item["name"]: item.get("value", item.get("valueFrom"))
        for item in container.get("env", [])
    }
