"""Forwarding through the real gateway process to a real upstream process."""

import gzip
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import RawSocketServer, free_port, read_head

MIB = 1024 * 1024


@pytest.fixture
def gateway(start_gateway, upstream):
    return start_gateway(
        [
            {"prefix": "/api", "upstream": "up", "strip_prefix": True},
            {
                "prefix": "/small",
                "upstream": "up",
                "strip_prefix": True,
                "max_body_bytes": 1000,
            },
            {
                "prefix": "/big",
                "upstream": "up",
                "strip_prefix": True,
                "max_body_bytes": 300 * MIB,
            },
        ],
        {"up": upstream.url},
        env={"GATEWAY_TRUSTED_PROXIES": '["10.0.0.0/8"]'},
    )


def echoed(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {name.lower(): value for name, value in response.json()["headers"]}


def test_hop_by_hop_connection_named_and_identity_headers_stay_at_the_gateway(
    gateway,
):
    response = httpx.get(
        f"{gateway.base_url}/api/echo/x?q=1",
        headers={
            "Connection": "keep-alive, X-Hop-Secret",
            "X-Hop-Secret": "1",
            "Keep-Alive": "timeout=9",
            "TE": "trailers",
            "Proxy-Authorization": "Basic eA==",
            "X-User-Id": "admin",
            "X-Forwarded-User": "root",
            "X-Auth-Request-Email": "boss@example.com",
            "Remote-User": "root",
            "X-Request-ID": "client-rid-1",
            "Authorization": "Basic dXNlcjpwYXNz",
            "Accept": "application/json",
        },
    )

    seen = echoed(response)
    assert response.json()["path"] == "/echo/x"
    assert response.json()["query"] == "q=1"
    for dropped in (
        "x-hop-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-user-id",
        "x-forwarded-user",
        "x-auth-request-email",
        "remote-user",
    ):
        assert dropped not in seen, dropped
    assert seen["authorization"] == "Basic dXNlcjpwYXNz"
    assert seen["accept"] == "application/json"
    assert seen["x-request-id"] == "client-rid-1"


def test_host_is_the_upstreams_and_the_clients_travels_as_x_forwarded_host(
    gateway, upstream
):
    seen = echoed(
        httpx.get(f"{gateway.base_url}/api/echo", headers={"Host": "api.example"})
    )

    assert seen["host"] == f"127.0.0.1:{upstream.port}"
    assert seen["x-forwarded-host"] == "api.example"
    assert seen["x-forwarded-proto"] == "http"


def test_forwarded_headers_from_an_untrusted_peer_are_replaced(gateway):
    seen = echoed(
        httpx.get(
            f"{gateway.base_url}/api/echo",
            headers={
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.example",
                "Forwarded": "for=6.6.6.6",
                "X-Real-IP": "6.6.6.6",
            },
        )
    )

    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"].startswith("127.0.0.1:")
    assert "forwarded" not in seen
    assert "x-real-ip" not in seen


def test_forwarded_headers_from_a_trusted_proxy_are_extended(start_gateway, upstream):
    trusting = start_gateway(
        [{"prefix": "/api", "upstream": "up", "strip_prefix": True}],
        {"up": upstream.url},
        env={"GATEWAY_TRUSTED_PROXIES": '["127.0.0.0/8"]'},
    )

    seen = echoed(
        httpx.get(
            f"{trusting.base_url}/api/echo",
            headers={
                "X-Forwarded-For": "198.51.100.7",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "api.example.com",
            },
        )
    )

    assert seen["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "api.example.com"


def test_response_hop_by_hop_headers_are_dropped(gateway):
    response = httpx.get(f"{gateway.base_url}/api/hop")

    assert response.text == "hop"
    assert response.headers["x-kept"] == "yes"
    assert "x-internal-hop" not in response.headers
    assert "keep-alive" not in response.headers


def test_gzip_passes_through_byte_for_byte(gateway):
    with httpx.stream(
        "GET", f"{gateway.base_url}/api/gzip", headers={"Accept-Encoding": "gzip"}
    ) as response:
        raw = b"".join(response.iter_raw())

    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(raw)
    assert gzip.decompress(raw).startswith(b"the same bytes, compressed once")


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_200_mib_body_streams_both_ways_in_bounded_memory(gateway):
    size = 200 * MIB
    pid = gateway.process.pid
    # Warm up, so that the pools and buffers exist before the baseline.
    httpx.post(f"{gateway.base_url}/big/upload", content=b"x" * MIB)
    baseline = _rss_bytes(pid)
    block = bytes(range(256)) * 256
    expected = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            expected.update(block)
            yield block

    uploaded = httpx.post(
        f"{gateway.base_url}/big/upload",
        content=body(),
        headers={"Content-Length": str(size)},
        timeout=120,
    )
    received = 0
    with httpx.stream(
        "GET", f"{gateway.base_url}/big/download?size={size}", timeout=120
    ) as downloaded:
        for chunk in downloaded.iter_raw():
            received += len(chunk)

    assert uploaded.status_code == 200
    assert uploaded.json() == {"bytes": size, "sha256": expected.hexdigest()}
    assert downloaded.status_code == 200
    assert received == size
    # Buffering either body would add 200 MiB; streaming adds a few buffers.
    assert _peak_rss_bytes(pid) - baseline < 64 * MIB


def test_a_body_over_the_limit_is_refused_by_its_content_length(gateway, upstream):
    response = httpx.post(f"{gateway.base_url}/small/upload", content=b"x" * 5000)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "The request body is larger than this route's limit of 1000 bytes."
    )
    assert upstream.hits().get("/upload", 0) == 0


def test_a_streamed_body_over_the_limit_is_refused_by_its_bytes(gateway):
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 500

    response = httpx.post(f"{gateway.base_url}/small/upload", content=chunks())

    assert response.status_code == 413
    assert response.json()["detail"] == (
        "The request body is larger than this route's limit of 1000 bytes."
    )


def test_a_body_within_the_limit_passes(gateway):
    response = httpx.post(f"{gateway.base_url}/small/upload", content=b"z" * 1000)

    assert response.json()["bytes"] == 1000


class SilentUpstream(RawSocketServer):
    """Reads a request, never answers, and notes when the gateway hangs up."""

    def __init__(self) -> None:
        self.got_request = threading.Event()
        self.saw_eof = threading.Event()
        super().__init__()

    def handle(self, connection: socket.socket) -> None:
        if read_head(connection) is None:
            return
        self.got_request.set()
        connection.settimeout(30)
        try:
            while connection.recv(65536):
                pass
        except OSError:
            return
        self.saw_eof.set()


def test_a_client_that_disconnects_cancels_its_upstream_call(start_gateway):
    silent = SilentUpstream()
    gateway = start_gateway(
        [
            {
                "prefix": "/hang",
                "upstream": "silent",
                "timeouts": {"read": 60, "total": 120},
            }
        ],
        {"silent": f"http://127.0.0.1:{silent.port}"},
    )
    client = socket.create_connection(("127.0.0.1", gateway.port))
    client.sendall(b"GET /hang/x HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert silent.got_request.wait(10)

    client.close()

    # The upstream sees its connection closed long before any timeout.
    assert silent.saw_eof.wait(10)
    silent.close()


class ClosingUpstream(RawSocketServer):
    """Answers the first request of each connection and keeps it alive, then
    closes the connection when a second request arrives on it: the race of a
    pooled connection that the upstream closes as the gateway reuses it."""

    def handle(self, connection: socket.socket) -> None:
        if read_head(connection) is None:
            return
        body = b'{"ok":true}'
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        connection.recv(65536)
        connection.close()


def test_an_idempotent_request_on_a_stale_pooled_connection_is_retried_once(
    start_gateway,
):
    closing = ClosingUpstream()
    gateway = start_gateway(
        [{"prefix": "/pool", "upstream": "closing", "retry": {"attempts": 1}}],
        {"closing": f"http://127.0.0.1:{closing.port}"},
    )

    with httpx.Client(base_url=gateway.base_url) as client:
        first = client.get("/pool/a")
        second = client.get("/pool/b")
        posted = client.post("/pool/c", content=b"{}")

    assert first.status_code == 200
    # The second GET met the closed pooled connection and went out again on a
    # fresh one, without the client noticing.
    assert second.status_code == 200
    assert second.json() == {"ok": True}
    # a and the lost b on the first connection; b again, then c, on the second.
    assert closing.connections == 2
    # A POST is not idempotent: it met the same race and is not sent twice.
    assert posted.status_code == 502
    closing.close()


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received and b"content-length: 0" in received.lower():
                break
    return received


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(
            b"GET /api/echo HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
            400,
            id="no-colon",
        ),
        pytest.param(
            b"GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * 100_000
            + b"\r\n\r\n",
            431,
            id="huge-header",
        ),
        pytest.param(
            b"GET /api/echo HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(80))
            + b"\r\n",
            431,
            id="many-headers",
        ),
        pytest.param(
            b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            400,
            id="bad-content-length",
        ),
        pytest.param(
            b"GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b\r\nConnection: close\r\n\r\n",
            400,
            id="control-byte",
        ),
        pytest.param(
            b"GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Latin: caf\xe9\r\nConnection: close\r\n\r\n",
            200,
            id="latin-1",
        ),
    ],
)
def test_malformed_or_huge_headers_never_get_a_500(gateway, request_bytes, expected):
    answer = raw_exchange(gateway.port, request_bytes)

    status_line = answer.split(b"\r\n", 1)[0]
    assert int(status_line.split()[1]) == expected, answer[:500]
    assert httpx.get(f"{gateway.base_url}/healthz").status_code == 200


def test_invalid_json_reaches_the_upstream_as_sent(gateway):
    response = httpx.post(
        f"{gateway.base_url}/api/echo",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 200
    assert response.json()["body_bytes"] == 9


def test_a_request_the_upstream_cannot_be_reached_for_is_a_502(start_gateway):
    gateway = start_gateway(
        [{"prefix": "/gone", "upstream": "gone"}],
        {"gone": f"http://127.0.0.1:{free_port()}"},
    )

    response = httpx.get(f"{gateway.base_url}/gone/x")

    assert response.status_code == 502
    assert response.json()["detail"] == "The upstream 'gone' could not be reached."
    time.sleep(0)
