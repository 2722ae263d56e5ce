"""The processes the gateway benchmark measures, and the checks that they work.

nginx serving a fixed JSON body, HAProxy 2.6 verifying the token in front of
it, the gateway (one process with its limiter in memory, one with it on
Redis), each with its own configuration in the run's folder, none of them the
system's service. Used by :mod:`tests.perf.bench_gateway`.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization

from servicekit.metrics import metrics_port
from tests.support.servers import free_port, wait_for_port
from tests.support.tokens import ISSUER, JwksServer, SigningKey, access_token_claims

SUBJECT = "bench-user"
BODY = '{"id":"ord-1","status":"created","items":[{"sku":"A-1","quantity":2}]}'
GATEWAY_REDIS = "gateway, limiter on Redis"


def program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the benchmark needs {name!r} (Debian package {name})")
    return path


def _start(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _nginx_config(workdir: Path, port: int) -> Path:
    prefix = workdir / "nginx"
    (prefix / "logs").mkdir(parents=True)
    config = prefix / "nginx.conf"
    config.write_text(
        textwrap.dedent(
            f"""\
            worker_processes 1;
            master_process off;
            daemon off;
            pid {prefix}/nginx.pid;
            error_log {prefix}/logs/error.log warn;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                client_body_temp_path {prefix}/body;
                proxy_temp_path {prefix}/proxy;
                fastcgi_temp_path {prefix}/fastcgi;
                uwsgi_temp_path {prefix}/uwsgi;
                scgi_temp_path {prefix}/scgi;
                keepalive_requests 1000000;
                server {{
                    listen 127.0.0.1:{port};
                    location / {{
                        default_type application/json;
                        return 200 '{BODY}';
                    }}
                }}
            }}
            """
        )
    )
    return config


def _haproxy_config(workdir: Path, port: int, upstream: int, public_key: Path) -> Path:
    config = workdir / "haproxy.cfg"
    config.write_text(
        textwrap.dedent(
            f"""\
            global
                nbthread 1
                maxconn 4000

            defaults
                mode http
                timeout connect 5s
                timeout client 30s
                timeout server 30s
                http-reuse always

            backend per_subject
                stick-table type string len 128 size 100k expire 60s store http_req_rate(10s)

            frontend api
                bind 127.0.0.1:{port}
                http-request set-var(txn.bearer) http_auth_bearer
                http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
                http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
                http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('$.sub')
                http-request set-var(txn.now) date()
                http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_verify("RS256","{public_key}") -m int 1 }}
                http-request deny deny_status 401 unless {{ var(txn.iss) -m str {ISSUER} }}
                http-request deny deny_status 401 unless {{ var(txn.exp),sub(txn.now) gt 0 }}
                http-request track-sc0 var(txn.sub) table per_subject
                http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 100000000 }}
                default_backend nginx

            backend nginx
                server nginx 127.0.0.1:{upstream}
            """
        )
    )
    return config


def _gateway_routes(workdir: Path, upstream: int) -> Path:
    routes = workdir / "routes.yaml"
    document = {
        "rate_limits": {
            # Never refuses during a run, but every request still takes a token.
            "bench": {"capacity": 100_000_000, "refill_per_second": 1_000_000},
        },
        "upstreams": {"nginx": {"url": f"http://127.0.0.1:{upstream}"}},
        "routes": [
            {
                "prefix": "/orders",
                "upstream": "nginx",
                "auth": {"required": True, "audience": "orders"},
                "rate_limit": "bench",
            }
        ],
    }
    routes.write_text(yaml.safe_dump(document))
    return routes


def _gateway_env(port: int, routes: Path, jwks_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GATEWAY_", "OTEL_"))
    }
    env.update(
        GATEWAY_PORT=str(port),
        GATEWAY_ROUTES_FILE=str(routes),
        GATEWAY_ISSUER=ISSUER,
        GATEWAY_JWKS_URL=jwks_url,
        # HAProxy logs nothing here either; the access log is a cost of its own.
        GATEWAY_LOG_LEVEL="WARNING",
    )
    return env


def status_of(url: str, token: str | None) -> int:
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    return int(done.stdout or 0)


def verify_paths(urls: dict[str, str], token: str, refused: dict[str, str]) -> None:
    """Fail loudly unless each path answers 200 with the token, 401 without.

    ``refused`` holds tokens both proxies must refuse (expired, other issuer,
    bad signature), so neither is measured skipping a check.
    """
    problems = []
    for name, url in urls.items():
        with_token = status_of(url, token)
        if with_token != 200:
            problems.append(f"{name}: {with_token} with the token, expected 200")
        if name == "nginx direct":
            continue
        for what, bad in {"no token": None, **refused}.items():
            status = status_of(url, bad)
            if status != 401:
                problems.append(f"{name}: {status} with {what}, expected 401")
    if problems:
        raise RuntimeError("benchmark paths are wrong: " + "; ".join(problems))


@dataclass(frozen=True)
class Targets:
    """The running paths, the token they accept, and tokens they must refuse."""

    urls: dict[str, str]
    token: str
    refused: dict[str, str]
    redis_port: int
    pids: dict[str, int]
    # The gateways' Prometheus endpoints, where their event loop lag is read.
    metrics_urls: dict[str, str]


@contextmanager
def start_targets(workdir: Path) -> Iterator[Targets]:
    key = SigningKey.generate("RS256")
    public_key = workdir / "public.pem"
    public_key.write_bytes(
        key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    token = key.sign(
        access_token_claims(sub=SUBJECT, exp=int(time.time()) + 3600, aud="orders")
    )
    now = int(time.time())
    impostor = SigningKey.generate("RS256")
    refused = {
        "an expired token": key.sign(
            access_token_claims(sub=SUBJECT, iat=now - 600, exp=now - 300)
        ),
        "another issuer's token": key.sign(
            access_token_claims(sub=SUBJECT, iss="http://evil.test/", exp=now + 3600)
        ),
        "a token signed by another key": impostor.sign(
            access_token_claims(sub=SUBJECT, exp=now + 3600), headers={"kid": key.kid}
        ),
    }
    jwks = JwksServer()
    jwks.publish(key)
    jwks.start()

    names = ("nginx", "haproxy", "gateway", "gateway-redis", "redis")
    ports = {name: free_port() for name in names}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        nginx_config = _nginx_config(workdir, ports["nginx"])
        processes.append(
            _start(
                ["taskset", "-c", "1", program("nginx"), "-p", str(nginx_config.parent),
                 "-c", str(nginx_config), "-e", str(workdir / "nginx" / "logs" / "error.log")],
                workdir / "nginx.log",
            )
        )  # fmt: skip
        processes.append(
            _start(
                ["taskset", "-c", "1", program("redis-server"), "--port", str(ports["redis"]),
                 "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(workdir)],
                workdir / "redis.log",
            )
        )  # fmt: skip
        haproxy_config = _haproxy_config(
            workdir, ports["haproxy"], ports["nginx"], public_key
        )
        processes.append(
            _start(
                ["taskset", "-c", "0", program("haproxy"), "-db", "-f", str(haproxy_config)],
                workdir / "haproxy.log",
            )
        )  # fmt: skip
        routes = _gateway_routes(workdir, ports["nginx"])
        redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
        for name, extra in (
            ("gateway", {}),
            ("gateway-redis", {"GATEWAY_REDIS_URL": redis_url}),
        ):
            env = _gateway_env(ports[name], routes, jwks.url) | extra
            processes.append(
                _start(
                    ["taskset", "-c", "0", sys.executable, "-m", "gateway"],
                    workdir / f"{name}.log",
                    env=env,
                )
            )
        for name, port in ports.items():
            try:
                wait_for_port(port, timeout=30)
            except TimeoutError as exc:
                log = (workdir / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} did not start:\n{log}") from exc

        urls = {
            "nginx direct": f"http://127.0.0.1:{ports['nginx']}/orders/1",
            "HAProxy 2.6": f"http://127.0.0.1:{ports['haproxy']}/orders/1",
            "gateway": f"http://127.0.0.1:{ports['gateway']}/orders/1",
            GATEWAY_REDIS: f"http://127.0.0.1:{ports['gateway-redis']}/orders/1",
        }
        for name in ("gateway", "gateway-redis"):
            _wait_ready(f"http://127.0.0.1:{ports[name]}/readyz")
        by_name = dict(
            zip(
                ["nginx direct", "redis", "HAProxy 2.6", "gateway", GATEWAY_REDIS],
                processes,
                strict=True,
            )
        )
        pids = {name: process.pid for name, process in by_name.items() if name in urls}
        metrics_urls = {
            name: f"http://127.0.0.1:{metrics_port(ports[service])}/metrics"
            for name, service in (
                ("gateway", "gateway"),
                (GATEWAY_REDIS, "gateway-redis"),
            )
        }
        yield Targets(urls, token, refused, ports["redis"], pids, metrics_urls)
    finally:
        for process in reversed(processes):
            _stop(process)
        jwks.stop()


def redis_buckets(port: int) -> int:
    """How many rate-limit buckets the Redis on ``port`` holds."""
    done = subprocess.run(
        ["redis-cli", "-p", str(port), "--scan", "--pattern", "gateway:rate-limit:*"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(done.stdout.split())


def _wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while status_of(url, None) != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} is not ready after {timeout} s")
        time.sleep(0.2)
