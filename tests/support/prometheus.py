"""A real Prometheus (Debian's ``prometheus``) scraping test processes.

Its configuration and storage live in the test's folder; it listens on a free
loopback port and scrapes every second, so a test sees new samples quickly and
asks with PromQL through the HTTP API, as an operator's dashboards would.
"""

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.programs import require_program
from tests.support.servers import free_port

SCRAPE_INTERVAL = "1s"


class Prometheus:
    """One Prometheus server; ``targets`` maps a job name to ``host:port``."""

    def __init__(self, folder: Path, targets: Mapping[str, str]) -> None:
        self.folder = folder
        self.port = free_port()
        self.config_path = folder / "prometheus.yml"
        self.log_path = folder / "prometheus.log"
        self.config_path.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": SCRAPE_INTERVAL,
                        "scrape_timeout": SCRAPE_INTERVAL,
                        "evaluation_interval": SCRAPE_INTERVAL,
                    },
                    "scrape_configs": [
                        {"job_name": job, "static_configs": [{"targets": [target]}]}
                        for job, target in targets.items()
                    ],
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start Prometheus and wait until it reports ready."""
        binary = require_program("prometheus")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "prometheus exited:\n" + self.log_path.read_text()[-3000:]
                )
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector ``expression`` evaluates to now."""
        response = httpx.get(
            f"{self.url}/api/v1/query", params={"query": expression}, timeout=5
        )
        body = response.json()
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return list(body["data"]["result"])

    def value(self, expression: str) -> float | None:
        """The single sample ``expression`` gives, or ``None`` if it gives none."""
        result = self.query(expression)
        assert len(result) <= 1, f"{expression} gave several series: {result}"
        return float(result[0]["value"][1]) if result else None

    def wait_for(
        self,
        expression: str,
        condition: Callable[[float], bool],
        *,
        timeout: float = 30.0,
    ) -> float:
        """Poll ``expression`` until its value meets ``condition``; return it."""
        deadline = time.monotonic() + timeout
        last: float | None = None
        while time.monotonic() < deadline:
            last = self.value(expression)
            if last is not None and condition(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"{expression} was {last} after {timeout} s")


@contextmanager
def running_prometheus(
    folder: Path, targets: Mapping[str, str]
) -> Iterator[Prometheus]:
    """A started :class:`Prometheus`, stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    server = Prometheus(folder, targets)
    server.start()
    try:
        yield server
    finally:
        server.stop()
