"""Benchmarks: ``make bench``. Reports, not pass/fail tests.

Each ``bench_<subject>.py`` module here has ``run(workdir: Path) -> str``, which
measures one subject and returns a Markdown section; ``python -m tests.perf``
runs them all and writes one report. Runs are bounded in count and time and
send traffic only to loopback.
"""
