"""Client-credentials tokens per second on one identity worker, and the raw
RS256 signing rate measured in the same run (the ceiling a token endpoint that
signs every token cannot pass).

identity runs as ``python -m identity`` (one uvicorn worker, SQLite, as
``make run``); wrk POSTs the form with HTTP Basic client authentication over
16 connections for a bounded time. Three rounds; medians reported.
"""

import base64
import re
import secrets
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.processes import ServiceProcess, service_environment
from tests.support.servers import free_port

ROUNDS = 3
SECONDS = 8
CONNECTIONS = 16
CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret-" + "b" * 40

LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=orders%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic {credentials}"
"""


def start_identity(workdir: Path) -> ServiceProcess:
    clients = workdir / "clients.yaml"
    clients.write_text(
        yaml.safe_dump(
            {
                "clients": [
                    {
                        "client_id": CLIENT_ID,
                        "client_type": "confidential",
                        "grant_types": ["client_credentials"],
                        "scope": "orders:read",
                    }
                ]
            }
        )
    )
    client_secrets = workdir / "client-secrets.yaml"
    client_secrets.write_text(yaml.safe_dump({CLIENT_ID: CLIENT_SECRET}))
    port = free_port()
    env = {
        "IDENTITY_PORT": str(port),
        "IDENTITY_ISSUER": f"http://127.0.0.1:{port}",
        "IDENTITY_DATABASE_URL": f"sqlite:///{workdir / 'identity.db'}",
        "IDENTITY_KEY_ENCRYPTION_KEY": base64.b64encode(
            secrets.token_bytes(32)
        ).decode(),
        "IDENTITY_CLIENTS_FILE": str(clients),
        "IDENTITY_CLIENT_SECRETS_FILE": str(client_secrets),
        "IDENTITY_LOG_LEVEL": "WARNING",
    }
    process = ServiceProcess(
        "identity", port, workdir / "identity.log", service_environment(env)
    )
    migrated = process.run("migrate")
    if migrated.returncode != 0:
        raise RuntimeError(migrated.stderr)
    process.start()
    return process


def raw_signing_rate(seconds: float = 3.0) -> float:
    """RS256 signatures per second of an access-token-sized JWT, one core."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        now = int(time.time())
        jwt.encode(
            {
                "iss": "http://127.0.0.1",
                "sub": CLIENT_ID,
                "aud": "orders",
                "client_id": CLIENT_ID,
                "scope": "orders:read",
                "iat": now,
                "exp": now + 600,
                "jti": uuid.uuid4().hex,
            },
            key,
            algorithm="RS256",
            headers={"kid": "k", "typ": "at+jwt"},
        )
        count += 1
    return count / (time.perf_counter() - start)


def wrk_rate(url: str, script: Path) -> tuple[float, int, int]:
    """Requests per second, total requests, and non-2xx answers of one wrk run."""
    finished = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 30,
        check=True,
    )
    out = finished.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, total, int(failed.group(1)) if failed else 0


def run(workdir: Path) -> str:
    credentials = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    script = workdir / "token.lua"
    script.write_text(LUA.replace("{credentials}", credentials))
    identity = start_identity(workdir)
    rates: list[float] = []
    signing: list[float] = []
    failures = 0
    try:
        url = f"{identity.base_url}/token"
        wrk_rate(url, script)  # warm-up: connections, caches, the first key
        for _ in range(ROUNDS):
            rate, _total, failed = wrk_rate(url, script)
            rates.append(rate)
            failures += failed
            signing.append(raw_signing_rate())
    finally:
        identity.stop()

    tokens_per_second = statistics.median(rates)
    signatures_per_second = statistics.median(signing)
    ratio = tokens_per_second / signatures_per_second
    return "\n".join(
        [
            "## identity: client-credentials token endpoint",
            "",
            f"One identity worker (uvicorn, SQLite), wrk -t1 -c{CONNECTIONS} "
            f"-d{SECONDS}s POSTing the form with HTTP Basic; {ROUNDS} rounds after a "
            "warm-up. Raw signing: PyJWT RS256 (RSA 2048) of the same claims, one "
            "core, measured between the rounds. The machine is shared: noisy.",
            "",
            "| measure | median | rounds |",
            "| --- | --- | --- |",
            f"| tokens/s (target >= 1000) | {tokens_per_second:.0f} | "
            + ", ".join(f"{r:.0f}" for r in rates)
            + " |",
            f"| raw RS256 signatures/s | {signatures_per_second:.0f} | "
            + ", ".join(f"{r:.0f}" for r in signing)
            + " |",
            f"| ratio tokens / signatures (target >= 0.5) | {ratio:.2f} | |",
            f"| non-2xx answers | {failures} | |",
        ]
    )
