"""The uvicorn runner, as a real process."""

import signal
import subprocess
import sys
import textwrap

import httpx

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
