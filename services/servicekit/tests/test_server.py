"""The uvicorn runner, as a real process."""

import signal
import subprocess
import sys
import textwrap

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import free_port, wait_for_port

_SERVICE = textwrap.dedent(
    """\
    import gc, sys
    from fastapi import FastAPI
    from servicekit.server import serve

    app = FastAPI()

    @app.get("/gc")
    async def collector() -> dict[str, int]:
        return {"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}

    serve(app, host="127.0.0.1", port=int(sys.argv[1]))
    """
)


def test_start_up_objects_are_frozen_out_of_garbage_collection(tmp_path):
    script = tmp_path / "service.py"
    script.write_text(_SERVICE)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=30)
        counts = httpx.get(f"http://127.0.0.1:{port}/gc").json()
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)

    # What the imports and the app made is frozen; a full collection walks
    # only what came after (a handful of objects by the first request).
    assert counts["frozen"] > 10_000, errors
    assert counts["tracked"] < counts["frozen"] / 10


_BLOCKING_SERVICE = textwrap.dedent(
    """\
    import sys, time
    from fastapi import FastAPI
    from servicekit.server import serve

    app = FastAPI()

    @app.get("/block")
    async def block() -> dict[str, str]:
        time.sleep(0.3)  # holds the event loop, as a blocking call would
        return {"status": "done"}

    serve(app, host="127.0.0.1", port=int(sys.argv[1]), metrics_port=int(sys.argv[2]))
    """
)


def _lag_samples(metrics_port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    return {
        sample.name + sample.labels.get("le", ""): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "event_loop_lag_seconds"
        for sample in family.samples
    }


def test_the_served_event_loop_exports_its_lag(tmp_path):
    script = tmp_path / "service.py"
    script.write_text(_BLOCKING_SERVICE)
    port, metrics = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(metrics)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=30)
        before = _lag_samples(metrics)
        assert httpx.get(f"http://127.0.0.1:{port}/block").status_code == 200
        after = _lag_samples(metrics)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)

    count, stalled = "event_loop_lag_seconds_count", "event_loop_lag_seconds_bucket0.25"
    assert after[count] > before[count], errors
    # One tick fell in the 0.3 s the request held the loop, and ran late by
    # more than 0.25 s; none had before it.
    assert before[count] - before[stalled] == 0
    assert after[count] - after[stalled] == 1
