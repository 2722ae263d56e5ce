"""``python -m tests.perf [subject ...]``: run the benchmarks, write the report.

The report goes to ``bench/results/report-<time>.md`` (git ignores the folder)
and to stdout. With no argument every ``bench_*.py`` module runs, in name order.

The report opens with the machine's speed at that moment: raw RS256
signatures per second on core 0, where the services under test run. The
shared virtual machines here have signed at rates nearly three times apart
on one day, and the peers did not slow alike (the gateway's CPU per request
grew more than HAProxy's), so a ratio between them is read with this figure.
"""

import argparse
import importlib
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERF = Path(__file__).resolve().parent
RESULTS = PERF.parents[1] / "bench" / "results"


def _subjects() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in PERF.glob("bench_*.py"))


def _machine() -> str:
    cpu = subprocess.run(
        ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{platform.node()}, {cpu or platform.processor()}, Python {platform.python_version()}"


def _machine_speed() -> str:
    """Raw RS256 signatures per second on core 0, in a process of its own."""
    done = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c",
         "from tests.perf.bench_identity import raw_signing_rate; "
         "print(raw_signing_rate(2.0))"],
        capture_output=True, text=True, check=True, timeout=60, cwd=PERF.parents[1],
    )  # fmt: skip
    rate = float(done.stdout)
    return (
        f"Machine speed at the start: {rate:,.0f} RS256 signatures/s on core 0 "
        "(`raw_signing_rate`, 2 s, 2048-bit key); the faster the machine, the "
        "higher this figure."
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf")
    parser.add_argument("subjects", nargs="*", help=f"among {_subjects()}")
    args = parser.parse_args()
    chosen = args.subjects or _subjects()
    unknown = sorted(set(chosen) - set(_subjects()))
    if unknown:
        parser.error(f"unknown subjects {unknown}; choose among {_subjects()}")

    sections = [
        f"# Benchmark report, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"Machine: {_machine()}. One run; compare ratios within this report only.",
        _machine_speed(),
    ]
    for subject in chosen:
        module = importlib.import_module(f"tests.perf.bench_{subject}")
        print(f"== {subject}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"bench-{subject}-") as workdir:
            sections.append(module.run(Path(workdir)))

    report = "\n\n".join(sections) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"report-{time.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(report)
    print(report)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
