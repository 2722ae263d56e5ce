"""Answers framed every way HTTP/1.1 allows, through a real gateway process.

The upstream is a raw-socket server in a thread that writes exact bytes, so
the gateway's client meets chunked bodies, HEAD and 204 answers, and an
upstream that dies mid-body as a real server would send them; the client is
httpx, which says what a user would see.
"""

import socket
from collections.abc import Callable

import httpx
import pytest

from tests.support.servers import RawSocketServer, read_head

Answer = Callable[[bytes], tuple[bytes, bool]]


class RawUpstream(RawSocketServer):
    """Answers each request with ``answer(request) -> (bytes, close)``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        super().__init__()

    def handle(self, connection: socket.socket) -> None:
        with connection:
            data = b""
            while (read := read_head(connection, data)) is not None:
                request, data = read
                self.requests.append(request)
                answer, close = self.answer(request)
                connection.sendall(answer)
                if close:
                    return


@pytest.fixture
def raw_upstream():
    started: list[RawUpstream] = []

    def start(answer: Answer) -> RawUpstream:
        server = RawUpstream(answer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def route_to(start_gateway, upstream: RawUpstream):
    return start_gateway(
        [{"prefix": "/raw", "upstream": "raw", "retry": {"attempts": 1}}],
        {"raw": upstream.url},
    )


def chunked(_request: bytes) -> tuple[bytes, bool]:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"6\r\nhello \r\n6\r\nchunks\r\n0\r\n\r\n",
        False,
    )


def test_a_chunked_answer_reaches_the_client_whole(start_gateway, raw_upstream):
    upstream = raw_upstream(chunked)
    gateway = route_to(start_gateway, upstream)

    with httpx.Client(base_url=gateway.base_url) as client:
        responses = [client.get("/raw/c") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.text for r in responses] == ["hello chunks"] * 3
    assert responses[0].headers["content-type"] == "text/plain"
    # Sequential requests went over one pooled upstream connection.
    assert upstream.connections == 1


def head_and_no_content(request: bytes) -> tuple[bytes, bool]:
    if request.startswith(b"HEAD"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", False
    if request.startswith(b"DELETE"):
        return b"HTTP/1.1 204 No Content\r\nX-Deleted: yes\r\n\r\n", False
    return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody", False


def test_head_and_204_answers_end_without_a_body_and_keep_the_connection(
    start_gateway, raw_upstream
):
    upstream = raw_upstream(head_and_no_content)
    gateway = route_to(start_gateway, upstream)

    with httpx.Client(base_url=gateway.base_url) as client:
        head = client.head("/raw/h")
        deleted = client.delete("/raw/d")
        got = client.get("/raw/g")

    assert head.status_code == 200
    assert head.headers["content-length"] == "1000"
    assert head.content == b""
    assert deleted.status_code == 204
    assert deleted.headers["x-deleted"] == "yes"
    assert deleted.content == b""
    assert got.content == b"body"
    assert upstream.connections == 1


def truncated(_request: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a part", True


def test_an_upstream_dying_mid_body_is_a_truncated_answer_not_a_success(
    start_gateway, raw_upstream
):
    upstream = raw_upstream(truncated)
    gateway = route_to(start_gateway, upstream)

    with pytest.raises(httpx.RemoteProtocolError), httpx.Client() as client:
        client.get(f"{gateway.base_url}/raw/t")

    # The gateway itself is fine and answers the next request.
    assert httpx.get(f"{gateway.base_url}/healthz").status_code == 200


def close_delimited(_request: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", True


def test_a_body_delimited_by_the_close_reaches_the_client(start_gateway, raw_upstream):
    upstream = raw_upstream(close_delimited)
    gateway = route_to(start_gateway, upstream)

    with httpx.Client(base_url=gateway.base_url) as client:
        first = client.get("/raw/a")
        second = client.get("/raw/b")

    assert (first.status_code, first.text) == (200, "until close")
    assert (second.status_code, second.text) == (200, "until close")
    # Such a connection cannot be reused: one per request.
    assert upstream.connections == 2


def test_sequential_requests_reuse_one_connection_to_a_real_upstream(
    start_gateway, upstream
):
    gateway = start_gateway(
        [{"prefix": "/api", "upstream": "up", "strip_prefix": True}],
        {"up": upstream.url},
    )

    with httpx.Client(base_url=gateway.base_url) as client:
        peers = {tuple(client.get("/api/echo/peer").json()["peer"]) for _ in range(10)}

    # Every request came from the same gateway-side socket.
    assert len(peers) == 1
