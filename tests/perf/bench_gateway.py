"""The gateway's authenticated, rate-limited proxy path against HAProxy 2.6.

Both sit in front of the same nginx serving a fixed JSON body and do the same
work per request: verify one RS256 access token, check ``iss`` and ``exp``,
and count the request against a limit keyed by the token's subject (HAProxy: a
stick table's ``http_req_rate``; the gateway: its token bucket, big enough
never to refuse during the run). The proxy under test owns core 0
(``taskset -c 0``); wrk and nginx share core 1, so the client is never starved
by the proxy it measures.

Throughput: after a warm-up, three bounded wrk runs per target, medians
reported. Latency the gateway adds: wrk paced by a Lua ``delay()`` to about
half the gateway's maximum rate, against the gateway and against nginx direct
with the same pacing; the difference of their percentiles is the gateway's
share. wrk's pacing is closed-loop (a connection waits for its answer before
its delay starts), so it understates tail latency under queueing compared with
an open-loop generator such as wrk2, which Debian does not ship.
"""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization

from tests.support.servers import free_port, wait_for_port
from tests.support.tokens import ISSUER, JwksServer, SigningKey, access_token_claims

RUNS = 3
RUN_SECONDS = 10
WARMUP_SECONDS = 3
CONNECTIONS = 32
PACED_DELAY_MS = 10
SUBJECT = "bench-user"
BODY = '{"id":"ord-1","status":"created","items":[{"sku":"A-1","quantity":2}]}'
MEMORY_KEYS = 2_000_000
GATEWAY_REDIS = "gateway, limiter on Redis"
QUIET_IDLE_SHARE = 0.8
QUIET_WAIT_SECONDS = 10


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run printed that the report needs."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    # CPU the proxy process used per request, and the share of a core it got
    # during the run (below 1 when other work ran on its core).
    cpu_ms_per_request: float = 0.0
    cpu_share: float = 0.0


def _program(name: str) -> str:
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


def _status(url: str, token: str | None) -> int:
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    return int(done.stdout or 0)


def _verify_paths(urls: dict[str, str], token: str, refused: dict[str, str]) -> None:
    """Fail loudly unless each path answers 200 with the token, 401 without.

    ``refused`` holds tokens both proxies must refuse (expired, other issuer,
    bad signature), so neither is measured skipping a check.
    """
    problems = []
    for name, url in urls.items():
        with_token = _status(url, token)
        if with_token != 200:
            problems.append(f"{name}: {with_token} with the token, expected 200")
        if name == "nginx direct":
            continue
        for what, bad in {"no token": None, **refused}.items():
            status = _status(url, bad)
            if status != 401:
                problems.append(f"{name}: {status} with {what}, expected 401")
    if problems:
        raise RuntimeError("benchmark paths are wrong: " + "; ".join(problems))


_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _parse_wrk(output: str) -> WrkResult:
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    percentiles = {
        label: float(value) * _UNIT_MS[unit]
        for label, value, unit in _LATENCY.findall(output)
    }
    if rate is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return WrkResult(float(rate[1]), percentiles["50"], percentiles["99"])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime and stime, fields 14 and 15 of proc(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _core_idle(core: int, seconds: float = 1.0) -> float:
    """The share of ``seconds`` that ``core`` spent idle (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{core} "):
                ticks = [int(value) for value in line.split()[1:]]
                return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, total
        raise RuntimeError(f"no cpu{core} in /proc/stat")

    idle_before, total_before = sample()
    time.sleep(seconds)
    idle_after, total_after = sample()
    return (idle_after - idle_before) / max(1, total_after - total_before)


def _wait_for_quiet_core() -> None:
    """Wait (bounded) until other work leaves most of core 0 to the proxy.

    The machine is shared; a run that starts while a test suite runs on core 0
    measures that suite as much as the proxy.
    """
    deadline = time.monotonic() + QUIET_WAIT_SECONDS
    while _core_idle(0) < QUIET_IDLE_SHARE and time.monotonic() < deadline:
        pass


def _wrk(
    url: str,
    token: str,
    seconds: int,
    *,
    connections: int = CONNECTIONS,
    script: Path | None = None,
    pid: int | None = None,
) -> WrkResult:
    command = [
        "taskset", "-c", "1", _program("wrk"), "-t1", f"-c{connections}",
        f"-d{seconds}s", "--latency", "--timeout", "5s",
        "-H", f"Authorization: Bearer {token}",
    ]  # fmt: skip
    if script is not None:
        command += ["-s", str(script)]
    if pid:
        _wait_for_quiet_core()
    cpu_before = _cpu_seconds(pid) if pid else 0.0
    started = time.monotonic()
    done = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    wall = time.monotonic() - started
    result = _parse_wrk(done.stdout)
    if not pid:
        return result
    cpu = _cpu_seconds(pid) - cpu_before
    return replace(
        result,
        cpu_ms_per_request=cpu * 1000 / (result.requests_per_second * seconds),
        cpu_share=cpu / wall,
    )


def _paced_script(workdir: Path, delay_ms: int) -> Path:
    script = workdir / "paced.lua"
    # wrk calls delay() before each request of a connection: milliseconds to wait.
    script.write_text(f"function delay()\n  return {delay_ms}\nend\n")
    return script


def _memory_probe() -> str:
    """Bytes per key and peak RSS of the in-memory buckets, in a fresh process."""
    code = textwrap.dedent(
        f"""\
        import json, resource
        from gateway.buckets import DEFAULT_MAX_KEYS, MemoryBuckets
        def rss():
            return int(open('/proc/self/statm').read().split()[1]) * 4096
        out = {{}}
        for max_keys in (DEFAULT_MAX_KEYS, 1_000_000):
            buckets = MemoryBuckets(100, 50.0, max_keys=max_keys)
            base = rss()
            for index in range({MEMORY_KEYS}):
                buckets.take(f"198.51.{{index >> 16}}.{{index & 0xffff}}")
            out[max_keys] = {{"kept": len(buckets), "bytes": rss() - base}}
            del buckets
        out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result = json.loads(done.stdout)
    bounded, large = result["100000"], result["1000000"]
    per_key = large["bytes"] / large["kept"]
    return (
        f"In-memory buckets, {MEMORY_KEYS:,} distinct keys (IPv4-like, 13-15 "
        f"characters) into one policy: with the default bound of "
        f"{bounded['kept']:,} keys, {bounded['bytes'] / 2**20:.1f} MiB of RSS "
        f"growth; with a bound of {large['kept']:,}, "
        f"{large['bytes'] / 2**20:.1f} MiB, about {per_key:.0f} bytes per key. "
        f"Peak RSS of the probe process: {result['peak_rss'] / 2**20:.0f} MiB."
    )


@dataclass(frozen=True)
class Targets:
    """The running paths, the token they accept, and tokens they must refuse."""

    urls: dict[str, str]
    token: str
    refused: dict[str, str]
    redis_port: int
    pids: dict[str, int]


@contextmanager
def _targets(workdir: Path) -> Iterator[Targets]:
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
                ["taskset", "-c", "1", _program("nginx"), "-p", str(nginx_config.parent),
                 "-c", str(nginx_config), "-e", str(workdir / "nginx" / "logs" / "error.log")],
                workdir / "nginx.log",
            )
        )  # fmt: skip
        processes.append(
            _start(
                ["taskset", "-c", "1", _program("redis-server"), "--port", str(ports["redis"]),
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
                ["taskset", "-c", "0", _program("haproxy"), "-db", "-f", str(haproxy_config)],
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
        yield Targets(urls, token, refused, ports["redis"], pids)
    finally:
        for process in reversed(processes):
            _stop(process)
        jwks.stop()


def _redis_buckets(port: int) -> int:
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
    while _status(url, None) != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} is not ready after {timeout} s")
        time.sleep(0.2)


def _median(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        statistics.median(r.requests_per_second for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        statistics.median(r.cpu_ms_per_request for r in results),
        statistics.median(r.cpu_share for r in results),
    )


def _paced(
    url: str, token: str, target: float, script: Path, pid: int
) -> list[WrkResult]:
    """Runs at about ``target`` req/s: connections calibrated by a short run."""
    connections = max(1, round(target * (PACED_DELAY_MS + 1) / 1000))
    probe = _wrk(url, token, WARMUP_SECONDS, connections=connections, script=script)
    connections = max(1, round(connections * target / probe.requests_per_second))
    return [
        _wrk(url, token, RUN_SECONDS, connections=connections, script=script, pid=pid)
        for _ in range(RUNS)
    ]


def run(workdir: Path) -> str:
    """Measure, and return the Markdown section of the report."""
    for name in ("nginx", "haproxy", "wrk", "taskset", "curl", "redis-server"):
        _program(name)

    with _targets(workdir) as targets:
        urls, token = targets.urls, targets.token
        _verify_paths(urls, token, targets.refused)
        for url in urls.values():
            _wrk(url, token, WARMUP_SECONDS)
        if _redis_buckets(targets.redis_port) == 0:
            raise RuntimeError(
                "the gateway with GATEWAY_REDIS_URL left no bucket in Redis"
            )

        throughput: dict[str, list[WrkResult]] = {name: [] for name in urls}
        for _ in range(RUNS):
            for name, url in urls.items():
                pid = targets.pids[name]
                throughput[name].append(_wrk(url, token, RUN_SECONDS, pid=pid))
        medians = {name: _median(results) for name, results in throughput.items()}

        target = medians["gateway"].requests_per_second / 2
        script = _paced_script(workdir, PACED_DELAY_MS)
        paced = {
            name: _median(_paced(urls[name], token, target, script, targets.pids[name]))
            for name in ("nginx direct", "HAProxy 2.6", "gateway")
        }

    memory = _memory_probe()
    return _report(throughput, medians, paced, target, memory)


def _report(
    throughput: dict[str, list[WrkResult]],
    medians: dict[str, WrkResult],
    paced: dict[str, WrkResult],
    target: float,
    memory: str,
) -> str:
    lines = [
        "## gateway: authenticated, rate-limited proxy path vs HAProxy 2.6",
        "",
        f"wrk -t1 -c{CONNECTIONS}, {RUNS} runs of {RUN_SECONDS} s after "
        f"{WARMUP_SECONDS} s of warm-up per target, each run waiting up to "
        f"{QUIET_WAIT_SECONDS} s for core 0 to be {QUIET_IDLE_SHARE:.0%} idle; "
        "the proxy on core 0, wrk and "
        "nginx on core 1; one RS256 token (2048-bit key), `iss`/`exp` checked, a "
        "limit per `sub`. The gateway is one uvicorn worker, log level WARNING "
        "(no access log, like HAProxy here); a second gateway process differs "
        "only by `GATEWAY_REDIS_URL` (redis-server on core 1). The machine has 2 "
        "cores shared with other engineers' test runs: absolute numbers are "
        "noisy, compare ratios.",
        "",
        "| target | req/s (median) | runs | p50 ms | p99 ms | CPU ms/request "
        "| share of its core |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, result in medians.items():
        runs = ", ".join(f"{r.requests_per_second:.0f}" for r in throughput[name])
        lines.append(
            f"| {name} | {result.requests_per_second:.0f} | {runs} | "
            f"{result.p50_ms:.2f} | {result.p99_ms:.2f} | "
            f"{result.cpu_ms_per_request:.3f} | {result.cpu_share:.2f} |"
        )
    haproxy = medians["HAProxy 2.6"].requests_per_second
    ratio = medians["gateway"].requests_per_second / haproxy
    ratio_redis = medians[GATEWAY_REDIS].requests_per_second / haproxy
    per_round = [
        g.requests_per_second / h.requests_per_second
        for g, h in zip(throughput["gateway"], throughput["HAProxy 2.6"], strict=True)
    ]
    cpu_ratio = (
        medians["HAProxy 2.6"].cpu_ms_per_request
        / medians["gateway"].cpu_ms_per_request
    )
    added_p50 = paced["gateway"].p50_ms - paced["nginx direct"].p50_ms
    added_p99 = paced["gateway"].p99_ms - paced["nginx direct"].p99_ms
    lines += [
        "",
        f"**Ratio gateway / HAProxy: {ratio:.2f}** (target >= 0.3); with the "
        f"limiter on Redis (redis-server on core 1): {ratio_redis:.2f}. Ratio "
        "within each round (runs of a round are back to back): "
        + ", ".join(f"{r:.2f}" for r in per_round)
        + f". By CPU per request, which other work on core 0 disturbs less: "
        f"**{cpu_ratio:.2f}**.",
        "",
        f"Latency at about half the gateway's maximum ({target:.0f} req/s): wrk "
        f"connections that each pause {PACED_DELAY_MS} ms (a Lua `delay()`) "
        "before each request, their number calibrated per target by a 3 s run; "
        "closed-loop, so queueing tails are understated.",
        "",
        "| paced target | req/s | p50 ms | p99 ms | share of its core |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, result in paced.items():
        lines.append(
            f"| {name} | {result.requests_per_second:.0f} | {result.p50_ms:.3f} | "
            f"{result.p99_ms:.3f} | {result.cpu_share:.2f} |"
        )
    lines += [
        "",
        f"**Gateway-added latency: p50 {added_p50:.3f} ms, p99 {added_p99:.3f} ms** "
        "(target p50 < 1 ms, p99 < 5 ms); HAProxy adds "
        f"p50 {paced['HAProxy 2.6'].p50_ms - paced['nginx direct'].p50_ms:.3f} ms, "
        f"p99 {paced['HAProxy 2.6'].p99_ms - paced['nginx direct'].p99_ms:.3f} ms "
        "at the same rate.",
        "",
        memory,
    ]
    return "\n".join(lines)
