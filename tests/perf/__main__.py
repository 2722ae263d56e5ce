"""``python -m tests.perf [subject ...]``: run the benchmarks, write the report.

The report goes to ``bench/results/report-<time>.md`` (git ignores the folder)
and to stdout. With no argument every ``bench_*.py`` module runs, in name order.
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
