"""``paced.lua`` holds wrk to the rate it is given, evenly or as Poisson arrivals.

Against a small keep-alive server in this process; the rates are low enough
for a loaded machine to keep up, so a failure means the pacing is wrong.
"""

import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.perf.bench_gateway import PACED_SCRIPT, _wrk
from tests.perf.gateway_targets import program

RATE = 200
SECONDS = 3


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body are two writes: without this, Nagle's algorithm
    # and the client's delayed ACK hold the body for 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.05)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("arrivals", ["even", "poisson"])
def test_wrk_sends_at_the_given_rate_whatever_the_connections(url, arrivals):
    program("wrk")
    result = _wrk(
        url, "token", SECONDS, connections=16, script_args=(str(RATE), arrivals)
    )

    # Closed loop, 16 connections against this server would do thousands/s.
    tolerance = 0.1 if arrivals == "even" else 0.2
    assert abs(result.requests_per_second - RATE) <= RATE * tolerance
    assert result.late_share < 0.05


def test_requests_held_back_by_busy_connections_are_counted_late(url):
    # Two connections to a server taking 50 ms can send 40 requests a second.
    result = _wrk(
        url + "slow", "token", SECONDS, connections=2, script_args=(str(RATE), "even")
    )

    assert result.requests_per_second < RATE / 2
    assert result.late_share > 0.5


def test_bad_arguments_stop_wrk_with_the_usage(url):
    done = subprocess.run(
        [program("wrk"), "-t1", "-c1", "-d1s", "-s", str(PACED_SCRIPT),
         url, "--", "fast", "even"],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip

    assert done.returncode != 0
    assert "usage: wrk ... -s paced.lua" in done.stdout + done.stderr
