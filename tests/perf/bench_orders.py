"""``GET /orders/{id}`` with a valid token, against a bare FastAPI endpoint.

Both run the same way: one uvicorn process each (orders through its own
``python -m orders``, with its middleware, token verification, database read
and access log; the bare app with one JSON route and nothing else), loaded by
Debian's ``wrk`` over loopback in alternating rounds of fixed length. The
report gives each round's rate, the medians and their ratio (target >= 0.5).
On a shared machine the absolute numbers are noisy; the ratio of medians
within one run is what to compare.
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.processes import service_environment
from tests.support.servers import free_port, wait_for_port
from tests.support.tokens import ISSUER, JwksServer, SigningKey, access_token_claims

ROUNDS = 3
SECONDS = 6
WARM_UP_SECONDS = 2
CONNECTIONS = 32
TARGET_RATIO = 0.5

_BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/orders/{order_id}")
async def order(order_id: str) -> dict[str, str]:
    return {"id": order_id, "status": "pending"}
"""


@dataclass(frozen=True)
class Load:
    """One wrk run's outcome."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failures: int


def _milliseconds(text: str) -> float:
    matched = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if matched is None:
        raise ValueError(f"wrk printed a latency this does not read: {text!r}")
    value, unit = matched.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _wrk(url: str, token: str, seconds: int) -> Load:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    finished = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    out = finished.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*?timeout (\d+)", out)
    failures = (int(failed.group(1)) if failed else 0) + (
        int(errors.group(1)) if errors else 0
    )
    return Load(rate, _milliseconds(p50), _milliseconds(p99), failures)


def _start(
    command: list[str], env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    wait_for_port(port, timeout=30)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(f"{base_url}/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("orders did not become ready")
        time.sleep(0.2)


def _create_order(base_url: str, token: str) -> str:
    response = httpx.post(
        f"{base_url}/orders",
        json={
            "currency": "EUR",
            "items": [{"sku": "BENCH-1", "quantity": 2, "unit_price_minor": 1250}],
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "bench-1"},
    )
    response.raise_for_status()
    order_id: str = response.json()["id"]
    return order_id


def _orders_environment(workdir: Path, port: int, jwks_url: str) -> dict[str, str]:
    return service_environment(
        {
            "ORDERS_PORT": str(port),
            "ORDERS_ISSUER": ISSUER,
            "ORDERS_JWKS_URL": jwks_url,
            "ORDERS_DATABASE_URL": f"sqlite:///{workdir / 'orders.db'}",
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
    )


def _measure(urls: dict[str, str], token: str) -> dict[str, list[Load]]:
    loads: dict[str, list[Load]] = {name: [] for name in urls}
    for url in urls.values():
        _wrk(url, token, WARM_UP_SECONDS)
    for _ in range(ROUNDS):
        for name, url in urls.items():
            loads[name].append(_wrk(url, token, SECONDS))
    return loads


def _report(loads: dict[str, list[Load]], order_id: str) -> str:
    medians = {
        name: statistics.median(load.requests_per_second for load in runs)
        for name, runs in loads.items()
    }
    ratio = medians["orders"] / medians["bare"]
    lines = [
        "## orders: GET /orders/{id} with a valid token vs a bare FastAPI endpoint",
        "",
        f"One uvicorn process each, wrk -t1 -c{CONNECTIONS}, {ROUNDS} alternating "
        f"rounds of {SECONDS} s after a {WARM_UP_SECONDS} s warm-up; SQLite; "
        f"order {order_id}.",
        "",
        "| endpoint | req/s per round | median req/s | p50 ms (median) "
        "| p99 ms (median) | failed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in loads.items():
        lines.append(
            f"| {name} | {', '.join(f'{r.requests_per_second:.0f}' for r in runs)} "
            f"| {medians[name]:.0f} "
            f"| {statistics.median(r.p50_ms for r in runs):.2f} "
            f"| {statistics.median(r.p99_ms for r in runs):.2f} "
            f"| {sum(r.failures for r in runs)} |"
        )
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    lines += [
        "",
        f"Ratio orders / bare: **{ratio:.2f}** ({verdict} the target of "
        f"{TARGET_RATIO}).",
        f"Ratio orders / orders /healthz: {medians['orders'] / medians['orders /healthz']:.2f} "
        "(orders' own work: token, database read, access log line).",
    ]
    return "\n".join(lines)


def run(workdir: Path) -> str:
    """Measure both endpoints in this run; a Markdown section."""
    key = SigningKey.generate("RS256")
    jwks = JwksServer()
    jwks.publish(key)
    jwks.start()
    token = key.sign(access_token_claims(exp=int(time.time()) + 3600))
    orders_port, bare_port = free_port(), free_port()
    env = _orders_environment(workdir, orders_port, jwks.url)
    (workdir / "bare_app.py").write_text(_BARE_APP)
    processes = []
    try:
        subprocess.run(
            [sys.executable, "-m", "orders", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        processes.append(
            _start(
                [sys.executable, "-m", "orders"],
                env,
                orders_port,
                workdir / "orders.log",
            )
        )
        processes.append(
            _start(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--app-dir",
                    str(workdir),
                    "--port",
                    str(bare_port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "bare_app:app",
                ],
                env,
                bare_port,
                workdir / "bare.log",
            )
        )
        base = f"http://127.0.0.1:{orders_port}"
        _wait_ready(base)
        order_id = _create_order(base, token)
        check = httpx.get(
            f"{base}/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}
        )
        check.raise_for_status()
        loads = _measure(
            {
                "bare": f"http://127.0.0.1:{bare_port}/orders/{order_id}",
                # The service's shared stack alone (middleware, problem
                # handlers, routing; no access log line, no token, no query):
                # what separates orders' own work from the platform's.
                "orders /healthz": f"{base}/healthz",
                "orders": f"{base}/orders/{order_id}",
            },
            token,
        )
    finally:
        for process in processes:
            _stop(process)
        jwks.stop()
    return _report(loads, order_id)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        print(run(Path(folder)))
