"""The three images built once per session and run as the cluster runs them:
non-root, read-only root, /tmp the only writable place, on a Docker network
whose aliases are the cluster DNS names, with PostgreSQL and Redis.

PostgreSQL and Redis run in containers built from Debian's packages on the
same base image (tests/images/backing), not on the host: the services then
reach them by the same names and URLs as in the cluster and in compose.yaml
(postgresql.platform.svc.cluster.local, ...), and no host port is involved.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.support.charts import REPOSITORY, SERVICE_CHARTS
from tests.support.containers import Docker, base_image, unique_name, wait_until
from tests.support.programs import unavailable

IMAGE_TAG = "images-test"
BACKING_IMAGE = f"platform-test/backing:{IMAGE_TAG}"
HARDENING = [
    "--read-only",
    "--tmpfs=/tmp:size=64m,mode=1777",
    "--user=10001:10001",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
]


def service_image(name: str) -> str:
    return f"platform/{name}:{IMAGE_TAG}"


def compose_service(name: str) -> dict[str, Any]:
    """A service of compose.yaml, anchors and merge keys resolved."""
    compose = yaml.safe_load((REPOSITORY / "compose.yaml").read_text())
    service: dict[str, Any] = compose["services"][name]
    return service


def environment_flags(name: str) -> list[str]:
    environment = compose_service(name)["environment"]
    return [f"--env={key}={value}" for key, value in environment.items()]


def volume_flags(name: str) -> list[str]:
    flags = []
    for volume in compose_service(name).get("volumes", []):
        source, target, mode = volume.split(":")
        flags.append(f"--volume={(REPOSITORY / source).resolve()}:{target}:{mode}")
    return flags


def alias(name: str) -> str:
    return f"{name}.platform.svc.cluster.local"


@dataclass
class RunningPlatform:
    """The containers of one test session and how to reach the gateway."""

    docker: Docker
    network: str
    containers: dict[str, str]
    gateway_url: str

    def container(self, name: str) -> str:
        return self.containers[name]


@pytest.fixture(scope="session")
def docker() -> Docker:
    engine = Docker()
    engine.require_engine()
    return engine


@pytest.fixture(scope="session")
def built_images(docker: Docker) -> dict[str, str]:
    """The three service images and the test-only backing image, built once."""
    base = base_image()
    if docker.run("image", "inspect", base, check=False).returncode != 0:
        pulled = docker.run("pull", "--quiet", base, check=False, timeout=300)
        if pulled.returncode != 0:
            unavailable(
                f"the base image {base} is not here and cannot be pulled; set "
                "BASE_IMAGE to a local one (CI: ../shared/ci/python-base-image.sh)"
            )
    arguments = {"BASE_IMAGE": base}
    started = time.monotonic()
    for name in SERVICE_CHARTS:
        docker.build(
            service_image(name),
            REPOSITORY,
            REPOSITORY / "services" / name / "Dockerfile",
            arguments,
        )
    backing = REPOSITORY / "tests" / "images" / "backing"
    docker.build(BACKING_IMAGE, backing, backing / "Dockerfile", arguments)
    print(f"images built in {time.monotonic() - started:.1f} s")
    return {name: service_image(name) for name in SERVICE_CHARTS}


def _start_backing(docker: Docker, network: str, containers: dict[str, str]) -> None:
    init_sql = (REPOSITORY / "compose" / "postgres-init.sql").resolve()
    containers["postgresql"] = unique_name("images-test-postgresql")
    docker.run(
        "run", "--detach", f"--name={containers['postgresql']}",
        f"--network={network}", f"--network-alias={alias('postgresql')}",
        "--user=postgres", f"--volume={init_sql}:/init.sql:ro",
        BACKING_IMAGE, "start-postgresql.sh",
    )  # fmt: skip
    containers["redis"] = unique_name("images-test-redis")
    docker.run(
        "run", "--detach", f"--name={containers['redis']}",
        f"--network={network}", f"--network-alias={alias('redis')}",
        "--user=redis", BACKING_IMAGE, "start-redis.sh",
    )  # fmt: skip
    wait_until(
        lambda: (
            docker.exec(
                containers["postgresql"], "pg_isready", "-h", "127.0.0.1"
            ).returncode
            == 0
        ),
        60,
        "PostgreSQL did not accept connections",
    )


def _migrate(docker: Docker, network: str, name: str) -> None:
    docker.run(
        "run", "--rm", f"--network={network}", *HARDENING,
        *environment_flags(f"{name}-migrations"), service_image(name), "migrate",
    )  # fmt: skip


def _start_service(
    docker: Docker, network: str, name: str, containers: dict[str, str]
) -> None:
    containers[name] = unique_name(f"images-test-{name}")
    publish = ["--publish=127.0.0.1::8080"] if name == "gateway" else []
    docker.run(
        "run", "--detach", f"--name={containers[name]}",
        f"--network={network}", f"--network-alias={alias(name)}",
        *HARDENING, *environment_flags(name), *volume_flags(name), *publish,
        service_image(name),
    )  # fmt: skip


def _gateway_url(docker: Docker, container: str) -> str:
    # Docker chose a free loopback port for 8080: no fixed port is bound.
    published = docker.run("port", container, "8080/tcp").stdout.split()[0]
    return f"http://{published}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def running_platform(
    docker: Docker, built_images: dict[str, str]
) -> Iterator[RunningPlatform]:
    """identity, orders and the gateway, migrated and ready, on their own network."""
    network = unique_name("images-test")
    docker.run("network", "create", network)
    containers: dict[str, str] = {}
    try:
        _start_backing(docker, network, containers)
        for name in ("identity", "orders"):
            _migrate(docker, network, name)
        for name in SERVICE_CHARTS:
            _start_service(docker, network, name, containers)
        gateway_url = _gateway_url(docker, containers["gateway"])
        running = RunningPlatform(docker, network, containers, gateway_url)
        for path in ("/readyz", "/auth/readyz"):
            wait_until(
                lambda path=path: _answers(gateway_url + path),
                60,
                f"{path} through the gateway did not answer 200",
            )
        yield running
    except Exception:
        for name, container in containers.items():
            print(f"--- {name} ---\n{docker.logs(container)[-2000:]}")
        raise
    finally:
        for container in containers.values():
            docker.run("rm", "--force", "--volumes", container, check=False)
        docker.run("network", "rm", network, check=False)
