"""The services as real processes on loopback, as `make run` starts them."""

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import free_port


@dataclass
class ServiceProcess:
    """One service running as ``python -m <name>``, its stdout in a file."""

    name: str
    port: int
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus endpoint: the service port + 1000 (servicekit.metrics)."""
        return f"http://127.0.0.1:{self.port + 1000}/metrics"

    def start(self, *args: str, timeout: float = 30.0) -> None:
        """Start the process and wait until ``/healthz`` answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.name, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n"
                    + self.log_path.read_text()[-3000:]
                )
            try:
                if (
                    httpx.get(f"{self.base_url}/healthz", timeout=0.5).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer /healthz in {timeout} s")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a one-off command of the service (``migrate``) to completion."""
        return subprocess.run(
            [sys.executable, "-m", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the process and wait for it; returns its exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def written_lines(self) -> list[str]:
        """Every complete line of the log so far, in one read.

        A last line still being written has no newline yet; it is left for
        the next read rather than parsed half-written.
        """
        written = self.log_path.read_text()
        lines = written.splitlines()
        if written and not written.endswith("\n"):
            lines.pop()
        return lines

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON log line written so far."""
        return [json.loads(raw) for raw in self.written_lines() if raw.startswith("{")]


def service_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without any service settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("IDENTITY_", "ORDERS_", "GATEWAY_", "OTEL_"))
    }
    env.update(extra)
    return env


# A confidential client every started platform registers, so that tests can
# get a client-credentials token from identity (see :func:`service_token`).
TEST_CLIENT_ID = "platform-tests"
TEST_CLIENT_SECRET = "platform-tests-secret-" + "x" * 32
TEST_CLIENT_SCOPE = "orders:read orders:write orders:admin users:read users:write"


@dataclass
class Platform:
    """identity, orders and the gateway, started together."""

    identity: ServiceProcess
    orders: ServiceProcess
    gateway: ServiceProcess
    client_id: str = TEST_CLIENT_ID
    client_secret: str = field(default=TEST_CLIENT_SECRET, repr=False)

    @property
    def public_url(self) -> str:
        return self.gateway.base_url

    def services(self) -> list[ServiceProcess]:
        return [self.identity, self.orders, self.gateway]


def service_token(
    platform: Platform, scope: str = "orders:read", resource: str | None = None
) -> str:
    """A client-credentials access token of the platform's test client."""
    data = {"grant_type": "client_credentials", "scope": scope}
    if resource is not None:
        data["resource"] = resource
    response = httpx.post(
        f"{platform.identity.base_url}/token",
        data=data,
        auth=(platform.client_id, platform.client_secret),
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def write_identity_clients(
    folder: Path, clients: list[dict[str, Any]] | None = None
) -> tuple[Path, Path]:
    """identity's clients file and secrets file: the test client plus ``clients``.

    ``clients`` entries may carry a ``client_secret``; it goes to the secrets file.
    """
    import yaml

    registered: list[dict[str, Any]] = [
        {
            "client_id": TEST_CLIENT_ID,
            "client_type": "confidential",
            "grant_types": ["client_credentials"],
            "scope": TEST_CLIENT_SCOPE,
        }
    ]
    secret_of = {TEST_CLIENT_ID: TEST_CLIENT_SECRET}
    for client in clients or []:
        entry = dict(client)
        secret = entry.pop("client_secret", None)
        if secret is not None:
            secret_of[entry["client_id"]] = secret
        registered.append(entry)
    clients_file = folder / "identity-clients.yaml"
    clients_file.write_text(yaml.safe_dump({"clients": registered}))
    secrets_file = folder / "identity-client-secrets.yaml"
    secrets_file.write_text(yaml.safe_dump(secret_of))
    return clients_file, secrets_file


def free_service_port() -> int:
    """A free loopback port whose metrics port (+1000) is free as well."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port p with p + 1000 also free")


def write_routes(
    path: Path,
    upstreams: Mapping[str, str | Mapping[str, Any]],
    routes: list[dict[str, Any]],
    rate_limits: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """A gateway routes file with the given upstream URLs, routes and policies."""
    import yaml

    document: dict[str, Any] = {
        # An upstream is its URL, or its whole entry (a circuit_breaker, ...).
        "upstreams": {
            name: {"url": url} if isinstance(url, str) else dict(url)
            for name, url in upstreams.items()
        },
        "routes": routes,
    }
    if rate_limits:
        document["rate_limits"] = {name: dict(p) for name, p in rate_limits.items()}
    path.write_text(yaml.safe_dump(document))
    return path


DEFAULT_ROUTES: list[dict[str, Any]] = [
    {"prefix": "/auth", "upstream": "identity", "strip_prefix": True},
    {"prefix": "/orders", "upstream": "orders"},
]


def start_platform(
    folder: Path,
    *,
    extra_upstreams: Mapping[str, str | Mapping[str, Any]] | None = None,
    extra_routes: list[dict[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
    identity_clients: list[dict[str, Any]] | None = None,
    rate_limits: Mapping[str, Mapping[str, float]] | None = None,
) -> Platform:
    """Start the three services with SQLite databases in ``folder``.

    identity registers the test client (:func:`service_token`) and
    ``identity_clients``, and gets a key-encryption key of its own.
    """
    ports = {name: free_service_port() for name in ("identity", "orders", "gateway")}
    issuer = f"http://127.0.0.1:{ports['gateway']}/auth"
    identity_url = f"http://127.0.0.1:{ports['identity']}"
    routes_file = write_routes(
        folder / "routes.yaml",
        {
            "identity": identity_url,
            "orders": f"http://127.0.0.1:{ports['orders']}",
            **(extra_upstreams or {}),
        },
        [*(extra_routes or []), *DEFAULT_ROUTES],
        rate_limits,
    )
    common = dict(env or {})
    clients_file, secrets_file = write_identity_clients(folder, identity_clients)
    identity = ServiceProcess(
        "identity",
        ports["identity"],
        folder / "identity.log",
        service_environment(
            {
                "IDENTITY_PORT": str(ports["identity"]),
                "IDENTITY_ISSUER": issuer,
                "IDENTITY_DATABASE_URL": f"sqlite:///{folder / 'identity.db'}",
                "IDENTITY_KEY_ENCRYPTION_KEY": base64.b64encode(
                    secrets.token_bytes(32)
                ).decode(),
                "IDENTITY_CLIENTS_FILE": str(clients_file),
                "IDENTITY_CLIENT_SECRETS_FILE": str(secrets_file),
                **common,
            }
        ),
    )
    orders = ServiceProcess(
        "orders",
        ports["orders"],
        folder / "orders.log",
        service_environment(
            {
                "ORDERS_PORT": str(ports["orders"]),
                "ORDERS_ISSUER": issuer,
                "ORDERS_JWKS_URL": f"{identity_url}/.well-known/jwks.json",
                "ORDERS_DATABASE_URL": f"sqlite:///{folder / 'orders.db'}",
                **common,
            }
        ),
    )
    gateway = ServiceProcess(
        "gateway",
        ports["gateway"],
        folder / "gateway.log",
        service_environment(
            {
                "GATEWAY_PORT": str(ports["gateway"]),
                "GATEWAY_ROUTES_FILE": str(routes_file),
                "GATEWAY_ISSUER": issuer,
                "GATEWAY_JWKS_URL": f"{identity_url}/.well-known/jwks.json",
                **common,
            }
        ),
    )
    platform = Platform(identity, orders, gateway)
    for service in (identity, orders):
        migrated = service.run("migrate")
        assert migrated.returncode == 0, migrated.stderr + migrated.stdout
    for service in platform.services():
        service.start()
    return platform


@contextmanager
def running_platform(
    folder: Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_upstreams: Mapping[str, str | Mapping[str, Any]] | None = None,
    extra_routes: list[dict[str, Any]] | None = None,
    identity_clients: list[dict[str, Any]] | None = None,
    rate_limits: Mapping[str, Mapping[str, float]] | None = None,
) -> Iterator[Platform]:
    """:func:`start_platform` with ``env`` for every service, stopped on exit."""
    running = start_platform(
        folder,
        env=env,
        extra_upstreams=extra_upstreams,
        extra_routes=extra_routes,
        identity_clients=identity_clients,
        rate_limits=rate_limits,
    )
    try:
        yield running
    finally:
        for service in reversed(running.services()):
            service.stop()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """The whole system on loopback, stopped after the test."""
    running = start_platform(tmp_path)
    try:
        yield running
    finally:
        for service in reversed(running.services()):
            service.stop()
