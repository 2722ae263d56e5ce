"""The images, built from the lock file and run as the cluster runs them."""

import json
import time

import httpx
import pytest

from tests.images.conftest import (
    HARDENING,
    RunningPlatform,
    alias,
    environment_flags,
    volume_flags,
)
from tests.support.charts import SERVICE_CHARTS, SERVICE_PORTS
from tests.support.containers import Docker, base_image, unique_name

pytestmark = pytest.mark.images

# What an image may add to its base: the service's virtual environment only.
MAX_ADDED_MEGABYTES = 150

OTHER_PACKAGES = {
    "identity": ["orders", "gateway", "aiohttp"],
    "orders": ["identity", "gateway", "aiohttp"],
    "gateway": ["identity", "orders", "aiohttp"],
}
DEV_TOOLS = ["pytest", "ruff", "mypy", "helm_python", "kubernetes_validate"]


def demo_service_bearer(
    running: RunningPlatform, token_endpoint: str | None = None
) -> dict[str, str]:
    """An Authorization header with a client-credentials token of compose's client."""
    token = httpx.post(
        token_endpoint or f"{running.gateway_url}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-service",
            "client_secret": "dev-only-demo-service-secret",
            "scope": "orders:read orders:write",
        },
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _python(docker: Docker, image: str, code: str) -> str:
    result = docker.run(
        "run", "--rm", *HARDENING, "--entrypoint=python", image, "-c", code
    )  # fmt: skip
    return result.stdout.strip()


@pytest.mark.parametrize("name", SERVICE_CHARTS)
def test_the_image_runs_its_service_as_a_numeric_non_root_user(
    docker, built_images, name
):
    config = docker.inspect("image", built_images[name])["Config"]

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", name]
    assert f"{SERVICE_PORTS[name]}/tcp" in config["ExposedPorts"]
    assert f"{SERVICE_PORTS[name] + 1000}/tcp" in config["ExposedPorts"]
    assert f"{name.upper()}_HOST=0.0.0.0" in config["Env"]


@pytest.mark.parametrize("name", SERVICE_CHARTS)
def test_the_image_holds_only_its_service_installed_from_the_lock(
    docker, built_images, name
):
    probe = (
        "import importlib.util, json, pathlib, shutil, sys;"
        f"names = {[name, 'servicekit', *OTHER_PACKAGES[name], *DEV_TOOLS]!r};"
        "site = pathlib.Path(sys.prefix, 'lib', 'python3.11', 'site-packages');"
        "print(json.dumps({"
        "'found': [n for n in names if importlib.util.find_spec(n)],"
        "'pth': sorted(p.read_text() for p in site.glob('*.pth')),"
        "'src': pathlib.Path('/src').exists(),"
        "'uv': shutil.which('uv'),"
        "'location': importlib.util.find_spec(names[0]).origin}))"
    )
    report = json.loads(_python(docker, built_images[name], probe))

    assert report["found"] == [name, "servicekit"]
    # --no-editable: the code is copied into site-packages, not linked to /src.
    assert report["location"].startswith("/opt/venv/lib/python3.11/site-packages/")
    assert not any("/src" in text for text in report["pth"])
    assert report["src"] is False
    assert report["uv"] is None  # the builder's tools stay in the builder


@pytest.mark.parametrize("name", SERVICE_CHARTS)
def test_the_image_adds_little_to_its_base(docker, built_images, name):
    size = docker.inspect("image", built_images[name])["Size"]
    base = docker.inspect("image", base_image())["Size"]

    added = (size - base) / 1e6
    print(f"{name}: {size / 1e6:.0f} MB, {added:.0f} MB over {base_image()}")
    assert added < MAX_ADDED_MEGABYTES


def test_containers_run_non_root_with_a_read_only_root(running_platform):
    docker = running_platform.docker
    for name in SERVICE_CHARTS:
        container = running_platform.container(name)
        host = docker.inspect("container", container)["HostConfig"]
        probe = docker.exec(
            container,
            "python",
            "-c",
            "import os, pathlib\n"
            "print(os.getuid(), os.getgid())\n"
            "pathlib.Path('/tmp/ok').write_text('x')\n"
            "pathlib.Path('/opt/venv/tampered').write_text('x')\n",
        )

        assert host["ReadonlyRootfs"] is True
        assert probe.stdout.split() == ["10001", "10001"]
        assert "Read-only file system: '/opt/venv/tampered'" in probe.stderr


def test_each_container_is_one_uvicorn_process(running_platform):
    docker = running_platform.docker
    for name in SERVICE_CHARTS:
        top = docker.run("top", running_platform.container(name), "-o", "pid,args")
        processes = top.stdout.strip().splitlines()[1:]

        assert len(processes) == 1, processes
        assert processes[0].split(None, 1)[1] == f"python -m {name}"


def test_the_platform_answers_through_the_gateway(running_platform):
    url = running_platform.gateway_url

    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").status_code == 200
    # identity's readiness pings PostgreSQL by its cluster DNS name.
    assert httpx.get(f"{url}/auth/readyz").json() == {"status": "ready"}


def test_containers_reach_each_other_by_cluster_dns_names(running_platform):
    probe = (
        "import socket, sys, urllib.request\n"
        "for url in sys.argv[1:]:\n"
        "    with urllib.request.urlopen(url, timeout=5) as r:\n"
        "        print(url, r.status)\n"
        f"with socket.create_connection(({alias('redis')!r}, 6379), timeout=5) as s:\n"
        "    s.sendall(b'PING\\r\\n')\n"
        "    print(s.recv(16).decode().strip())\n"
    )
    result = running_platform.docker.exec(
        running_platform.container("gateway"),
        "python", "-c", probe,
        f"http://{alias('orders')}:8001/readyz",
        f"http://{alias('identity')}:8000/readyz",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"http://{alias('orders')}:8001/readyz 200",
        f"http://{alias('identity')}:8000/readyz 200",
        "+PONG",
    ]


def test_migrations_created_both_schemas(running_platform):
    for database in ("identity", "orders"):
        tables = running_platform.docker.exec(
            running_platform.container("postgresql"),
            # The server's Unix socket, in the container's own /tmp.
            "psql", "-h", "/tmp", "-U", "postgres", "-d", database, "-tAc",  # noqa: S108
            "SELECT version_num FROM alembic_version",
        )  # fmt: skip

        assert tables.returncode == 0, tables.stderr
        assert tables.stdout.strip(), f"{database} has no migration applied"


@pytest.mark.parametrize(
    ("path", "service"), [("/auth/nowhere", "identity"), ("/orders/nowhere", "orders")]
)
def test_the_request_id_follows_a_request_into_the_service_container(
    running_platform, path, service
):
    request_id = unique_name("images-request")

    # /orders needs a token at the gateway; with one, orders itself answers 404.
    response = httpx.get(
        running_platform.gateway_url + path,
        headers={"X-Request-ID": request_id, **demo_service_bearer(running_platform)},
    )

    assert response.status_code == 404
    assert response.headers["x-request-id"] == request_id
    assert response.json()["request_id"] == request_id
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logs = running_platform.docker.logs(running_platform.container(service))
        lines = [json.loads(line) for line in logs.splitlines() if request_id in line]
        if lines:
            break
        time.sleep(0.1)
    assert [line["event"] for line in lines] == ["request"]
    assert lines[0]["service"] == service


def test_a_client_credentials_token_and_an_order_through_the_gateway(running_platform):
    url = running_platform.gateway_url
    discovery = httpx.get(f"{url}/auth/.well-known/openid-configuration").json()
    # The issuer is public (localhost:8080); the test reaches the same gateway
    # on the port Docker published.
    token_endpoint = discovery["token_endpoint"].replace("http://localhost:8080", url)

    bearer = demo_service_bearer(running_platform, token_endpoint)

    anonymous = httpx.get(f"{url}/orders")
    created = httpx.post(
        f"{url}/orders",
        headers={**bearer, "Idempotency-Key": unique_name("images-order")},
        json={
            "currency": "EUR",
            "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 1250}],
        },
    )
    assert created.status_code == 201, created.text
    fetched = httpx.get(f"{url}/orders/{created.json()['id']}", headers=bearer)

    # The issuer is the configured public URL, not the container's address.
    assert discovery["issuer"] == "http://localhost:8080/auth"
    assert anonymous.status_code == 401
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["total_minor"] == 2500
    assert fetched.json()["status"] == "pending"


def test_sigterm_stops_the_container_promptly(docker, built_images):
    # python runs as PID 1: unless uvicorn handles SIGTERM, the kernel ignores
    # it and Kubernetes would wait out the whole grace period before SIGKILL.
    container = unique_name("images-test-sigterm")
    docker.run(
        "run", "--detach", f"--name={container}", *HARDENING,
        *environment_flags("gateway"), *volume_flags("gateway"), built_images["gateway"],
    )  # fmt: skip
    try:
        time.sleep(1.5)
        started = time.monotonic()
        docker.run("stop", "--time=20", container, timeout=60)
        stopped_after = time.monotonic() - started
        state = docker.inspect("container", container)["State"]
    finally:
        docker.run("rm", "--force", container, check=False)

    assert stopped_after < 10
    assert state["OOMKilled"] is False
    assert state["ExitCode"] in (0, 143)
