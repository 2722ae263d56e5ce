"""The three services as real processes, reached through the gateway."""

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.support.processes import start_platform
from tests.support.servers import free_port

pytestmark = pytest.mark.e2e


def test_identity_and_orders_answer_through_the_gateway(platform):
    identity = httpx.get(f"{platform.public_url}/auth/healthz")
    # A path no orders route matches: /orders/{id} itself needs a token (401).
    orders = httpx.get(f"{platform.public_url}/orders/unknown-order-route/deeper")

    assert identity.status_code == 200
    assert identity.json() == {"status": "ok"}
    # The orders service answered (its problem names its own path), not the gateway.
    assert orders.status_code == 404
    assert orders.json()["instance"] == "/orders/unknown-order-route/deeper"


def lines_with_request_id(service, request_id, timeout=5.0):
    """The service's log lines for ``request_id``, once there is at least one.

    A service writes its access line after the last byte of its answer, so
    the caller can hold the answer a moment before the line is in the file.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            line for line in service.log_lines() if line["request_id"] == request_id
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_the_request_id_follows_the_request_through_the_gateway(platform):
    response = httpx.get(
        f"{platform.public_url}/auth/no-such-page",
        headers={"X-Request-ID": "trace-me-1"},
    )

    assert response.headers["x-request-id"] == "trace-me-1"
    assert response.json()["request_id"] == "trace-me-1"
    identity_lines = lines_with_request_id(platform.identity, "trace-me-1")
    gateway_lines = lines_with_request_id(platform.gateway, "trace-me-1")
    assert [line["event"] for line in identity_lines] == ["request"]
    assert identity_lines[0]["route"] == "unmatched"
    assert gateway_lines[0]["route"] == "/auth/*"


def test_a_generated_request_id_is_the_same_in_every_service(platform):
    response = httpx.get(f"{platform.public_url}/orders/x")

    generated = response.headers["x-request-id"]
    assert response.json()["request_id"] == generated
    assert lines_with_request_id(platform.orders, generated, timeout=10), (
        "orders logged no line with the id"
    )


def test_every_log_line_of_every_service_is_json_with_the_standard_fields(platform):
    httpx.get(f"{platform.public_url}/auth/x")

    for service in platform.services():
        # One read: a service may append a line (an access line after its
        # answer went out) between two reads.
        raw = service.written_lines()
        assert raw, f"{service.name} wrote no log line"
        not_json = [line for line in raw if not line.startswith("{")]
        assert not not_json, f"{service.name} wrote lines that are not JSON: {not_json}"
        lines = [json.loads(line) for line in raw]
        for line in lines:
            assert line["service"] == service.name
            assert {
                "level",
                "event",
                "request_id",
                "trace_id",
                "span_id",
            } <= line.keys()


def test_unknown_routes_and_methods_are_problems_at_the_gateway(platform):
    missing = httpx.get(f"{platform.public_url}/nothing-here")
    wrong_method = httpx.delete(f"{platform.public_url}/healthz")

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"


def test_a_stopped_upstream_is_a_502_problem(platform):
    platform.orders.stop()

    response = httpx.get(f"{platform.public_url}/orders/1")

    assert response.status_code == 502
    assert response.json()["detail"] == "The upstream 'orders' could not be reached."


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(1.5)
        body = b"finished"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_sigterm_lets_in_flight_requests_finish(tmp_path):
    slow = ThreadingHTTPServer(("127.0.0.1", free_port()), _SlowHandler)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    platform = start_platform(
        tmp_path,
        extra_upstreams={"slow": f"http://127.0.0.1:{slow.server_port}"},
        extra_routes=[{"prefix": "/slow", "upstream": "slow"}],
    )
    try:
        outcome: dict[str, httpx.Response] = {}
        request = threading.Thread(
            target=lambda: outcome.setdefault(
                "response", httpx.get(f"{platform.public_url}/slow", timeout=10)
            )
        )
        request.start()
        time.sleep(0.5)

        exit_code = platform.gateway.stop(signal.SIGTERM)
        request.join(10)

        assert outcome["response"].status_code == 200
        assert outcome["response"].text == "finished"
        # uvicorn drains, then re-raises the signal it caught, so the status
        # says "ended by SIGTERM" rather than "crashed".
        assert exit_code == -signal.SIGTERM
    finally:
        for service in platform.services():
            service.stop()
        slow.shutdown()
