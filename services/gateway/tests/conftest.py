"""Real processes for the gateway's tests: an upstream server and the gateway.

The upstream is ``upstream_server.py`` in its own process (a test may stop and
restart it); the gateway is ``python -m gateway`` with a routes file the test
writes, checking tokens against a real JWKS endpoint (:class:`JwksServer`).
"""

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.certificates import (
    Authority,
    certificate_authority,
    server_certificate,
)
from tests.support.processes import ServiceProcess, service_environment
from tests.support.servers import free_port, wait_for_port
from tests.support.tokens import ISSUER, JwksServer

UPSTREAM_SCRIPT = Path(__file__).with_name("upstream_server.py")


@dataclass
class UpstreamProcess:
    """``upstream_server.py`` on a fixed port, stoppable and restartable."""

    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # PEM files of the certificate chain and key, and of the CA that must sign
    # the client's certificate: served over TLS with them.
    tls: tuple[Path, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        tls = [str(path) for path in self.tls]
        self.process = subprocess.Popen(
            [sys.executable, str(UPSTREAM_SCRIPT), str(self.port), *tls],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def hits(self) -> dict[str, int]:
        counts: dict[str, int] = httpx.get(f"{self.url}/_hits").json()
        return counts


def _running(server: UpstreamProcess) -> Iterator[UpstreamProcess]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream() -> Iterator[UpstreamProcess]:
    """The test upstream, running."""
    yield from _running(UpstreamProcess(free_port()))


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    """A private CA, as a cluster's (cert-manager's, say)."""
    return certificate_authority(tmp_path, "cluster-ca")


@pytest.fixture
def tls_upstream(tmp_path: Path, authority: Authority) -> Iterator[UpstreamProcess]:
    """The test upstream over TLS, its certificate for localhost signed by ``authority``."""
    tls = server_certificate(tmp_path, authority)
    yield from _running(UpstreamProcess(free_port(), tls=tls))


@pytest.fixture
def mtls_upstream(tmp_path: Path, authority: Authority) -> Iterator[UpstreamProcess]:
    """As ``tls_upstream``, refusing clients without a certificate ``authority`` signed."""
    chain, key = server_certificate(tmp_path, authority)
    yield from _running(UpstreamProcess(free_port(), tls=(chain, key, authority.pem)))


GatewayFactory = Callable[..., ServiceProcess]


@pytest.fixture
def start_gateway(tmp_path: Path, jwks_server: JwksServer) -> Iterator[GatewayFactory]:
    """Start ``python -m gateway`` with the given routes; stopped after the test."""
    started: list[ServiceProcess] = []

    def start(
        routes: list[dict[str, Any]],
        upstreams: dict[str, Any],
        *,
        rate_limits: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
    ) -> ServiceProcess:
        index = len(started)
        routes_file = tmp_path / f"routes-{index}.yaml"
        document: dict[str, Any] = {
            "upstreams": {
                name: spec if isinstance(spec, dict) else {"url": spec}
                for name, spec in upstreams.items()
            },
            "routes": routes,
        }
        if rate_limits:
            document["rate_limits"] = rate_limits
        routes_file.write_text(yaml.safe_dump(document))
        port = free_port()
        gateway = ServiceProcess(
            "gateway",
            port,
            tmp_path / f"gateway-{index}.log",
            service_environment(
                {
                    "GATEWAY_PORT": str(port),
                    "GATEWAY_ROUTES_FILE": str(routes_file),
                    "GATEWAY_ISSUER": ISSUER,
                    "GATEWAY_JWKS_URL": jwks_server.url,
                    "GATEWAY_LOG_LEVEL": "INFO",
                    **(env or {}),
                }
            ),
        )
        gateway.start()
        started.append(gateway)
        if wait_ready:
            wait_until_ready(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            gateway.stop()


def wait_until_ready(gateway: ServiceProcess, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{gateway.base_url}/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the gateway was not ready in {timeout} s")
