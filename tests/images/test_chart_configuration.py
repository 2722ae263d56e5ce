"""Each image started with exactly the configuration its chart renders (the
ConfigMap, the Secret's values, the downward API, the mounted files) is ready
on a network whose names are the cluster's: the charts' wiring works with the
real services, not only on paper."""

import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.images.conftest import HARDENING, RunningPlatform, service_image
from tests.support.charts import Manifest, find, render_platform
from tests.support.containers import unique_name, wait_until

pytestmark = pytest.mark.images

# What the downward API would give a pod.
DOWNWARD = {
    "metadata.name": "chart-test-pod",
    "metadata.namespace": "platform",
    "spec.nodeName": "chart-test-node",
}


def _expand(value: str, env: dict[str, str]) -> str:
    # Kubernetes expands $(VAR) from variables defined earlier in the list.
    return re.sub(
        r"\$\(([A-Z0-9_]+)\)", lambda m: env.get(m.group(1), m.group(0)), value
    )


def _environment(
    manifests: list[Manifest], container: dict[str, Any]
) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(
            find(manifests, "ConfigMap", source["configMapRef"]["name"]).body["data"]
        )
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = _expand(item["value"], env)
            continue
        reference = item["valueFrom"]
        if "fieldRef" in reference:
            env[item["name"]] = DOWNWARD[reference["fieldRef"]["fieldPath"]]
        else:
            key = reference["secretKeyRef"]
            data = find(manifests, "Secret", key["name"]).body["stringData"]
            if key["key"] in data:
                env[item["name"]] = data[key["key"]]
    return env


def _write_volume(
    folder: Path, manifests: list[Manifest], volume: dict[str, Any]
) -> Path:
    if "configMap" in volume:
        data = find(manifests, "ConfigMap", volume["configMap"]["name"]).body["data"]
    else:
        data = find(manifests, "Secret", volume["secret"]["secretName"]).body[
            "stringData"
        ]
        items = volume["secret"].get("items")
        if items:
            data = {i["path"]: data[i["key"]] for i in items}
    target: Path = folder / volume["name"]
    target.mkdir()
    for name, text in data.items():
        (target / name).write_text(text)
        (target / name).chmod(0o644)
    return target


@pytest.fixture
def readable_folder() -> Iterator[Path]:
    # The container's user (10001) must read what the test writes as root.
    folder = Path(tempfile.mkdtemp(prefix="chart-config-"))
    folder.chmod(
        stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    )
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("name", "paths"),
    [
        ("identity", ["/readyz"]),
        ("orders", ["/readyz"]),
        ("gateway", ["/readyz", "/auth/readyz"]),
    ],
)
def test_the_image_is_ready_with_the_configuration_its_chart_renders(
    running_platform: RunningPlatform,
    readable_folder: Path,
    name: str,
    paths: list[str],
) -> None:
    manifests = render_platform()
    spec = find(manifests, "Deployment", name).body["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = _environment(manifests, container)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = []
    for mount in container["volumeMounts"]:
        if mount["name"] == "tmp":
            continue
        source = _write_volume(readable_folder, manifests, volumes[mount["name"]])
        mounts.append(f"--volume={source}:{mount['mountPath']}:ro")

    docker = running_platform.docker
    started = unique_name(f"images-test-chart-{name}")
    docker.run(
        "run", "--detach", f"--name={started}", f"--network={running_platform.network}",
        *HARDENING, *[f"--env={k}={v}" for k, v in env.items()], *mounts,
        service_image(name), *container["args"],
    )  # fmt: skip
    port = container["ports"][0]["containerPort"]
    probe = (
        "import sys, urllib.request\n"
        "for url in sys.argv[1:]:\n"
        "    urllib.request.urlopen(url, timeout=2)\n"
    )
    urls = [f"http://127.0.0.1:{port}{path}" for path in paths]
    try:
        wait_until(
            lambda: docker.exec(started, "python", "-c", probe, *urls).returncode == 0,
            30,
            f"{name} with its chart's configuration was not ready",
        )
    except TimeoutError:
        pytest.fail(docker.logs(started)[-3000:])
    finally:
        docker.run("rm", "--force", started, check=False)
