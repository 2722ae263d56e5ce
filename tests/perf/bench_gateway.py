"""The gateway's authenticated, rate-limited proxy path against HAProxy 2.6.

Both sit in front of the same nginx serving a fixed JSON body and do the same
work per request: verify one RS256 access token, check ``iss`` and ``exp``,
and count the request against a limit keyed by the token's subject (HAProxy: a
stick table's ``http_req_rate``; the gateway: its token bucket, big enough
never to refuse during the run). The proxy under test owns core 0
(``taskset -c 0``); wrk and nginx share core 1, so the client is never starved
by the proxy it measures.

Throughput: after a warm-up, three bounded wrk runs per target, medians
reported. Latency the gateway adds: wrk paced to about half the gateway's
maximum rate by ``paced.lua``, open loop as wrk2 is (one schedule of send
slots, evenly spaced; again with Poisson arrivals), against the gateway and
against nginx direct at the same rate; the difference of their percentiles is
the gateway's share. wrk still times a request from its send, so requests
sent late because every connection was busy are counted and reported.
HAProxy is also paced at half its own maximum, against nginx direct at that
rate: the peer measured on the latency target's own terms.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.perf.gateway_targets import (
    GATEWAY_REDIS,
    program,
    redis_buckets,
    start_targets,
    verify_paths,
)

RUNS = 3
RUN_SECONDS = 10
WARMUP_SECONDS = 3
CONNECTIONS = 32
# Connections for paced runs: enough for this much time of answers in flight.
PACED_HORIZON_SECONDS = 0.025
PACED_SCRIPT = Path(__file__).with_name("paced.lua")
ARRIVALS = ("even", "poisson")
# Lower shares of the gateway's maximum, paced evenly: where its tail stands
# below the target's rate (half the maximum).
CURVE_FRACTIONS = (0.25, 0.375)
MEMORY_KEYS = 2_000_000
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
    # Paced runs: the share of requests sent over 1 ms after their slot.
    late_share: float = 0.0
    # The gateway: its event loop's ticks (every 20 ms) that ran over 5 ms and
    # over 25 ms late during the run, read from event_loop_lag_seconds.
    loop_stalls: tuple[int, int] | None = None


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
    paced = re.search(r"^PACED sent=(\d+) late=(\d+)$", output, re.MULTILINE)
    late_share = int(paced[2]) / max(1, int(paced[1])) if paced else 0.0
    return WrkResult(
        float(rate[1]), percentiles["50"], percentiles["99"], late_share=late_share
    )


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


def _late_ticks(metrics_url: str) -> tuple[float, float, float]:
    """The gateway's event loop ticks so far: all, within 5 ms, within 25 ms."""
    text = httpx.get(metrics_url, timeout=5).text
    samples = {
        sample.name + sample.labels.get("le", ""): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "event_loop_lag_seconds"
        for sample in family.samples
    }
    prefix = "event_loop_lag_seconds_"
    return (
        samples[prefix + "count"],
        samples[prefix + "bucket0.005"],
        samples[prefix + "bucket0.025"],
    )


def _wrk(
    url: str,
    token: str,
    seconds: int,
    *,
    connections: int = CONNECTIONS,
    script_args: tuple[str, ...] = (),
    pid: int | None = None,
    metrics_url: str | None = None,
) -> WrkResult:
    command = [
        "taskset", "-c", "1", program("wrk"), "-t1", f"-c{connections}",
        f"-d{seconds}s", "--latency", "--timeout", "5s",
        "-H", f"Authorization: Bearer {token}",
    ]  # fmt: skip
    if pid:
        _wait_for_quiet_core()
    cpu_before = _cpu_seconds(pid) if pid else 0.0
    ticks_before = _late_ticks(metrics_url) if metrics_url else None
    started = time.monotonic()
    # wrk passes what follows "--" to the script's init().
    target = (
        ["-s", str(PACED_SCRIPT), url, "--", *script_args] if script_args else [url]
    )
    done = subprocess.run(
        [*command, *target],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    wall = time.monotonic() - started
    result = _parse_wrk(done.stdout)
    if ticks_before is not None and metrics_url is not None:
        ticks, within_5, within_25 = (
            after - before
            for after, before in zip(
                _late_ticks(metrics_url), ticks_before, strict=True
            )
        )
        result = replace(
            result, loop_stalls=(round(ticks - within_5), round(ticks - within_25))
        )
    if not pid:
        return result
    cpu = _cpu_seconds(pid) - cpu_before
    return replace(
        result,
        cpu_ms_per_request=cpu * 1000 / (result.requests_per_second * seconds),
        cpu_share=cpu / wall,
    )


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


def _median(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        statistics.median(r.requests_per_second for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        statistics.median(r.cpu_ms_per_request for r in results),
        statistics.median(r.cpu_share for r in results),
        statistics.median(r.late_share for r in results),
    )


def _medians(runs_by_name: dict[str, list[WrkResult]]) -> dict[str, WrkResult]:
    return {name: _median(runs) for name, runs in runs_by_name.items()}


def _paced(
    url: str,
    token: str,
    rate: float,
    arrivals: str,
    pid: int,
    metrics_url: str | None = None,
) -> list[WrkResult]:
    """Runs sending ``rate`` requests per second on ``arrivals``' schedule."""
    connections = max(16, round(rate * PACED_HORIZON_SECONDS))
    args = (f"{rate:.0f}", arrivals)
    return [
        _wrk(
            url,
            token,
            RUN_SECONDS,
            connections=connections,
            script_args=args,
            pid=pid,
            metrics_url=metrics_url,
        )
        for _ in range(RUNS)
    ]


def run(workdir: Path) -> str:
    """Measure, and return the Markdown section of the report."""
    for name in ("nginx", "haproxy", "wrk", "taskset", "curl", "redis-server"):
        program(name)

    with start_targets(workdir) as targets:
        urls, token = targets.urls, targets.token
        verify_paths(urls, token, targets.refused)
        for url in urls.values():
            _wrk(url, token, WARMUP_SECONDS)
        if redis_buckets(targets.redis_port) == 0:
            raise RuntimeError(
                "the gateway with GATEWAY_REDIS_URL left no bucket in Redis"
            )

        throughput: dict[str, list[WrkResult]] = {name: [] for name in urls}
        for _ in range(RUNS):
            for name, url in urls.items():
                pid = targets.pids[name]
                throughput[name].append(_wrk(url, token, RUN_SECONDS, pid=pid))
        medians = _medians(throughput)

        maximum = medians["gateway"].requests_per_second
        target = maximum / 2
        paced = {
            arrivals: {
                name: _paced(
                    urls[name],
                    token,
                    target,
                    arrivals,
                    targets.pids[name],
                    targets.metrics_urls.get(name),
                )
                for name in ("nginx direct", "HAProxy 2.6", "gateway")
            }
            for arrivals in ARRIVALS
        }
        curve = {
            fraction: {
                name: _median(
                    _paced(
                        urls[name],
                        token,
                        maximum * fraction,
                        "even",
                        targets.pids[name],
                    )
                )
                for name in ("nginx direct", "gateway")
            }
            for fraction in CURVE_FRACTIONS
        }
        peer_half = medians["HAProxy 2.6"].requests_per_second / 2
        peer = {
            name: _paced(urls[name], token, peer_half, "even", targets.pids[name])
            for name in ("nginx direct", "HAProxy 2.6")
        }

    memory = _memory_probe()
    curve_section = _curve_report(curve, paced["even"], maximum)
    peer_section = _peer_report(peer, peer_half)
    return _report(
        throughput, medians, paced, target, [curve_section, peer_section, memory]
    )


def _peer_report(runs_by_name: dict[str, list[WrkResult]], rate: float) -> str:
    """HAProxy held to the latency target's terms: half its own maximum."""
    results = _medians(runs_by_name)
    direct, peer = results["nginx direct"], results["HAProxy 2.6"]
    per_run = ", ".join(f"{r.p99_ms:.2f}" for r in runs_by_name["HAProxy 2.6"])
    return (
        f"The peer on the target's terms: HAProxy paced evenly at half its own "
        f"maximum ({rate:.0f} req/s), nginx direct at the same rate, {RUNS} runs "
        f"of {RUN_SECONDS} s each, medians: HAProxy adds p50 "
        f"{peer.p50_ms - direct.p50_ms:.3f} ms, p99 "
        f"{peer.p99_ms - direct.p99_ms:.3f} ms (its p99 per run: {per_run} ms; "
        f"{peer.cpu_share:.2f} of its core, late {peer.late_share:.2%})."
    )


def _curve_report(
    curve: dict[float, dict[str, WrkResult]],
    half: dict[str, list[WrkResult]],
    maximum: float,
) -> str:
    points = {**curve, 0.5: {name: _median(half[name]) for name in half}}
    lines = [
        f"Latency the gateway adds as its paced rate grows (even slots, {RUNS} "
        f"runs of {RUN_SECONDS} s per point, medians; 0.5 is the row above):",
        "",
        "| share of its maximum | req/s | added p50 ms | added p99 ms | gateway's "
        "share of its core | late |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fraction in sorted(points):
        direct, gateway = points[fraction]["nginx direct"], points[fraction]["gateway"]
        lines.append(
            f"| {fraction:.3g} | {maximum * fraction:.0f} | "
            f"{gateway.p50_ms - direct.p50_ms:.3f} | "
            f"{gateway.p99_ms - direct.p99_ms:.3f} | {gateway.cpu_share:.2f} | "
            f"{gateway.late_share:.2%} |"
        )
    return "\n".join(lines)


def _report(
    throughput: dict[str, list[WrkResult]],
    medians: dict[str, WrkResult],
    paced: dict[str, dict[str, list[WrkResult]]],
    target: float,
    closing: list[str],
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
    lines += [
        "",
        f"**Ratio gateway / HAProxy: {ratio:.2f}** (target >= 0.3); with the "
        f"limiter on Redis (redis-server on core 1): {ratio_redis:.2f}. Ratio "
        "within each round (runs of a round are back to back): "
        + ", ".join(f"{r:.2f}" for r in per_round)
        + f". By CPU per request, which other work on core 0 disturbs less: "
        f"**{cpu_ratio:.2f}**.",
        "",
        f"Latency at about half the gateway's maximum ({target:.0f} req/s), "
        f"{RUNS} runs of {RUN_SECONDS} s per target and schedule, medians: wrk "
        "paced open loop by `tests/perf/paced.lua` (one schedule of send slots "
        "that any free connection takes, as wrk2 paces; wrk's timers fire them "
        "in 1 ms batches), with slots evenly spaced (wrk2's model, the target's "
        "measure) and with exponential gaps (Poisson arrivals, burstier). "
        "'Late' is the share of requests sent over 1 ms after their slot "
        "because every connection was busy: wrk times from the send, so a "
        "late share above zero hides queueing.",
        "",
        "| schedule | paced target | req/s | p50 ms | p99 ms | late | "
        "share of its core |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arrivals, runs_by_name in paced.items():
        for name, result in _medians(runs_by_name).items():
            lines.append(
                f"| {arrivals} | {name} | {result.requests_per_second:.0f} | "
                f"{result.p50_ms:.3f} | {result.p99_ms:.3f} | "
                f"{result.late_share:.2%} | {result.cpu_share:.2f} |"
            )
    lines.append("")
    for arrivals, runs_by_name in paced.items():
        results = _medians(runs_by_name)
        direct = results["nginx direct"]
        gateway, peer = results["gateway"], results["HAProxy 2.6"]
        emphasis = "**" if arrivals == ARRIVALS[0] else ""
        per_run = ", ".join(f"{r.p99_ms:.2f}" for r in runs_by_name["gateway"])
        stalls = [r.loop_stalls or (0, 0) for r in runs_by_name["gateway"]]
        lines.append(
            f"- {arrivals}: {emphasis}gateway-added latency p50 "
            f"{gateway.p50_ms - direct.p50_ms:.3f} ms, p99 "
            f"{gateway.p99_ms - direct.p99_ms:.3f} ms{emphasis}"
            + (" (target p50 < 1 ms, p99 < 5 ms)" if emphasis else "")
            + f"; HAProxy adds p50 {peer.p50_ms - direct.p50_ms:.3f} ms, "
            f"p99 {peer.p99_ms - direct.p99_ms:.3f} ms. The gateway's p99 "
            f"per run: {per_run} ms; its event loop's ticks over 5 ms late per "
            f"run: {', '.join(str(over_5) for over_5, _ in stalls)} (over 25 ms: "
            f"{', '.join(str(over_25) for _, over_25 in stalls)})."
        )
    for paragraph in closing:
        lines += ["", paragraph]
    return "\n".join(lines)
