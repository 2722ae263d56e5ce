"""The upstream client's framing, pooling and failure cases, against real sockets.

Each upstream here is a real TCP server in the test's event loop that answers
with exact bytes, so every framing rule of RFC 9112 the client relies on is
played as a server would play it: chunked, close-delimited, HEAD, 204, an
interim 100, a connection closed mid-body or before any answer.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

from gateway.upstream_client import (
    StaleConnection,
    UnsendableHeader,
    UpstreamConnectError,
    UpstreamPool,
    UpstreamProtocolError,
    UpstreamResponse,
)
from tests.support.servers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class ScriptedUpstream:
    """A TCP server whose ``handler`` writes each answer's bytes by hand."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_peer = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> "ScriptedUpstream":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request head, and its body when it has a Content-Length."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed_by_peer.set()
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def serve(handler: Handler) -> ScriptedUpstream:
    return await ScriptedUpstream(handler).start()


async def read_all(response: UpstreamResponse) -> bytes:
    parts = []
    while chunk := await response.read():
        parts.append(chunk)
    return b"".join(parts)


@pytest.fixture
async def upstream_factory() -> AsyncIterator[
    Callable[[Handler], Awaitable[ScriptedUpstream]]
]:
    started: list[ScriptedUpstream] = []

    async def start(handler: Handler) -> ScriptedUpstream:
        server = await serve(handler)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close()


async def test_a_chunked_answer_arrives_unchunked_and_the_connection_is_reused(
    upstream_factory,
):
    async def chunked(reader, writer, _):
        while await upstream.read_request(reader) is not None:
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
            )

    upstream = await upstream_factory(chunked)
    pool = UpstreamPool(upstream.url)

    for _ in range(3):
        response = await pool.request("GET", "/c", [])
        assert response.status == 200
        assert (b"Transfer-Encoding", b"chunked") in response.headers
        assert await read_all(response) == b"hello world"

    assert upstream.connections == 1
    await pool.close()


async def test_head_and_204_answers_have_no_body_and_keep_the_connection(
    upstream_factory,
):
    async def bodiless(reader, writer, _):
        while (request := await upstream.read_request(reader)) is not None:
            if request.startswith(b"HEAD"):
                # The length a GET would get, and no body (RFC 9110 9.3.2).
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\nX-Done: yes\r\n\r\n")

    upstream = await upstream_factory(bodiless)
    pool = UpstreamPool(upstream.url)

    head = await pool.request("HEAD", "/h", [])
    assert head.status == 200
    assert (b"Content-Length", b"1000") in head.headers
    assert await read_all(head) == b""
    no_content = await pool.request("DELETE", "/d", [])
    assert no_content.status == 204
    assert await read_all(no_content) == b""
    again = await pool.request("HEAD", "/h", [])
    assert await read_all(again) == b""

    assert upstream.connections == 1
    await pool.close()


async def test_a_body_that_ends_with_the_connection_is_read_to_its_end(
    upstream_factory,
):
    async def close_delimited(reader, writer, _):
        await upstream.read_request(reader)
        # Neither Content-Length nor chunked: RFC 9112 section 6.3, rule 8.
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        await writer.drain()

    upstream = await upstream_factory(close_delimited)
    pool = UpstreamPool(upstream.url)

    response = await pool.request("GET", "/", [])

    assert await read_all(response) == b"until the end"
    assert pool.open == 0
    await pool.close()


async def test_an_upstream_that_closes_mid_body_breaks_the_read(upstream_factory):
    async def truncating(reader, writer, _):
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    upstream = await upstream_factory(truncating)
    pool = UpstreamPool(upstream.url)

    response = await pool.request("GET", "/", [])
    assert response.status == 200
    with pytest.raises(UpstreamProtocolError, match="before the answer was complete"):
        await read_all(response)
    await pool.close()


async def test_an_interim_100_is_skipped_for_the_final_answer(upstream_factory):
    async def continuing(reader, writer, _):
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)

    upstream = await upstream_factory(continuing)
    pool = UpstreamPool(upstream.url)

    response = await pool.request("GET", "/", [])

    assert response.status == 200
    assert await read_all(response) == b"ok"
    await pool.close()


async def test_sequential_requests_share_one_connection_until_it_idles_out(
    upstream_factory,
):
    async def keep_alive(reader, writer, _):
        while await upstream.read_request(reader) is not None:
            writer.write(OK)

    upstream = await upstream_factory(keep_alive)
    pool = UpstreamPool(upstream.url, idle_timeout=0.3)

    for _ in range(5):
        assert await read_all(await pool.request("GET", "/", [])) == b"ok"
    assert upstream.connections == 1

    # The gateway closes the idle connection itself, before the upstream would.
    await asyncio.wait_for(upstream.closed_by_peer.wait(), 5)
    assert pool.open == 0
    assert await read_all(await pool.request("GET", "/", [])) == b"ok"
    assert upstream.connections == 2
    await pool.close()


async def test_max_connections_makes_callers_wait_for_a_free_connection(
    upstream_factory,
):
    async def slow(reader, writer, _):
        while await upstream.read_request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(OK)

    upstream = await upstream_factory(slow)
    pool = UpstreamPool(upstream.url, max_connections=2)

    async def call() -> bytes:
        return await read_all(await pool.request("GET", "/", [], connect_timeout=5))

    bodies = await asyncio.gather(*(call() for _ in range(6)))

    assert bodies == [b"ok"] * 6
    assert upstream.connections == 2
    await pool.close()


def closing_on_reuse(upstream_ref: list[ScriptedUpstream]) -> Handler:
    """Answers a connection's first request, then closes on its second."""

    async def handler(reader, writer, _):
        await upstream_ref[0].read_request(reader)
        writer.write(OK)
        await writer.drain()
        await upstream_ref[0].read_request(reader)

    return handler


async def test_a_get_on_a_stale_pooled_connection_is_sent_once_more(
    upstream_factory,
):
    ref: list[ScriptedUpstream] = []
    upstream = await upstream_factory(closing_on_reuse(ref))
    ref.append(upstream)
    pool = UpstreamPool(upstream.url)

    assert await read_all(await pool.request("GET", "/a", [])) == b"ok"
    assert await read_all(await pool.request("GET", "/b", [])) == b"ok"

    # /b met the closed connection, then went again on a fresh one.
    assert upstream.connections == 2
    assert [r.split(b" ")[1] for r in upstream.requests] == [b"/a", b"/b", b"/b"]
    await pool.close()


async def test_a_post_on_a_stale_pooled_connection_is_never_sent_twice(
    upstream_factory,
):
    ref: list[ScriptedUpstream] = []
    upstream = await upstream_factory(closing_on_reuse(ref))
    ref.append(upstream)
    pool = UpstreamPool(upstream.url)

    assert await read_all(await pool.request("GET", "/a", [])) == b"ok"
    with pytest.raises(StaleConnection):
        await pool.request("POST", "/p", [("Content-Length", "0")])

    assert upstream.connections == 1
    assert [r.split(b" ")[1] for r in upstream.requests] == [b"/a", b"/p"]
    await pool.close()


async def test_a_streamed_body_goes_chunked_or_with_its_length(upstream_factory):
    async def echo_framing(reader, writer, _):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            if b"transfer-encoding: chunked" in head.lower():
                body = await reader.readuntil(b"0\r\n\r\n")
            else:
                body = await reader.readexactly(6)
            upstream.requests.append(head + body)
            writer.write(OK)

    upstream = await upstream_factory(echo_framing)
    pool = UpstreamPool(upstream.url)

    async def body() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    chunked = await pool.request(
        "POST", "/", [("Content-Length", "6")], body(), chunked=True
    )
    assert await read_all(chunked) == b"ok"
    sized = await pool.request("PUT", "/", [("Content-Length", "6")], body())
    assert await read_all(sized) == b"ok"

    first, second = upstream.requests
    # RFC 9112 section 6.3: chunked framing, and no Content-Length beside it.
    assert b"content-length" not in first.lower()
    assert first.endswith(b"\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    assert b"Content-Length: 6\r\n" in second
    assert second.endswith(b"\r\n\r\nabcdef")
    assert upstream.connections == 1
    await pool.close()


async def test_the_request_carries_the_upstreams_host_and_the_given_headers(
    upstream_factory,
):
    async def record(reader, writer, _):
        await upstream.read_request(reader)
        writer.write(OK)

    upstream = await upstream_factory(record)
    pool = UpstreamPool(upstream.url + "/base/")

    await read_all(await pool.request("GET", "/x?q=1", [("X-A", "caf\xe9")]))

    port = upstream.url.rsplit(":", 1)[1]
    assert upstream.requests[0] == (
        b"GET /base/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%b\r\nX-A: caf\xe9\r\n\r\n"
        % port.encode()
    )
    await pool.close()


async def test_a_header_with_a_line_break_is_never_written():
    pool = UpstreamPool(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(UnsendableHeader):
        await pool.request("GET", "/", [("X-A", "a\r\nX-Injected: 1")])


async def test_a_refused_connection_is_a_connect_error():
    pool = UpstreamPool(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(UpstreamConnectError, match=r"cannot connect to 127\.0\.0\.1"):
        await pool.request("GET", "/", [])
    assert pool.open == 0


async def test_a_silent_upstream_times_out_and_its_connection_is_closed(
    upstream_factory,
):
    async def silent(reader, writer, _):
        await upstream.read_request(reader)
        await reader.read()
        upstream.closed_by_peer.set()

    upstream = await upstream_factory(silent)
    pool = UpstreamPool(upstream.url)

    with pytest.raises(TimeoutError):
        await pool.request("GET", "/", [], read_timeout=0.2)

    await asyncio.wait_for(upstream.closed_by_peer.wait(), 5)
    assert pool.open == 0


async def test_a_traced_call_is_a_client_span_whose_context_goes_upstream(
    upstream_factory,
):
    async def record(reader, writer, _):
        await upstream.read_request(reader)
        writer.write(OK)

    upstream = await upstream_factory(record)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    pool = UpstreamPool(upstream.url, tracer=tracer)
    inbound = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    with tracer.start_as_current_span("gateway server") as server:
        response = await pool.request(
            "GET", "/x?code=secret", [("traceparent", inbound), ("X-A", "1")]
        )
        await read_all(response)

    (client,) = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert client.kind is SpanKind.CLIENT
    assert client.parent is not None
    assert client.parent.span_id == server.get_span_context().span_id
    assert client.attributes == {
        "http.method": "GET",
        "http.url": f"{upstream.url}/x",
        "http.status_code": 200,
    }
    # The upstream's parent is the gateway's call, not the caller's span.
    sent = upstream.requests[0].decode("latin-1").lower()
    assert sent.count("traceparent:") == 1
    context = client.context
    assert f"traceparent: 00-{context.trace_id:032x}-{context.span_id:016x}-" in sent
    await pool.close()


async def test_a_caller_that_gave_up_waiting_for_a_connection_leaves_it_to_the_next(
    upstream_factory,
):
    async def slow(reader, writer, _):
        while await upstream.read_request(reader) is not None:
            await asyncio.sleep(0.3)
            writer.write(OK)

    upstream = await upstream_factory(slow)
    pool = UpstreamPool(upstream.url, max_connections=1)

    async def call(connect_timeout: float) -> bytes:
        response = await pool.request("GET", "/", [], connect_timeout=connect_timeout)
        return await read_all(response)

    busy = asyncio.create_task(call(5))
    await asyncio.sleep(0.05)
    impatient = asyncio.create_task(call(0.1))
    patient = asyncio.create_task(call(5))

    with pytest.raises(TimeoutError):
        await impatient
    assert await busy == b"ok"
    assert await patient == b"ok"
    assert upstream.connections == 1
    await pool.close()
