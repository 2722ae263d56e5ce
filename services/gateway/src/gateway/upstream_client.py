"""A lean HTTP/1.1 client for the data path: one pool of connections per upstream.

The gateway asks little of a client: send a request whose headers it already
built, stream a body each way, and keep connections alive. aiohttp did that
at 170-330 us per exchange here, most of it its own request and header
machinery; this client writes the request in one buffer and parses the answer
with httptools (llhttp, the parser uvicorn uses) on an asyncio Protocol.

Framing follows RFC 9112: request bodies go with the client's
``Content-Length`` or chunked (section 7.1); the answer's body ends where its
``Content-Length`` or last chunk says, or at the close of the connection when
it has neither (section 6.3); HEAD answers and 1xx, 204 and 304 have none.
Bytes are passed as received: nothing is decompressed.

A connection goes back to its pool only when its answer was complete, the
upstream did not ask to close (section 9.3), and the request body was sent
whole. Idle connections are closed after the upstream's ``idle_timeout_seconds``
(below the upstream's own keep-alive), and a request that meets a pooled
connection closed before any byte of its answer is sent once more on a fresh
connection when that is safe: an idempotent method without a body (section
9.3.1).
"""

import asyncio
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import httptools
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.retries import IDEMPOTENT_METHODS

# Reading from the upstream pauses when this much of its answer waits for a
# slow client, and resumes below a quarter of it: memory stays bounded per call.
READ_HIGH_WATER = 256 * 1024
READ_LOW_WATER = READ_HIGH_WATER // 4
# How often pending waits are checked against their deadlines.
DEADLINE_TICK_SECONDS = 0.05

# RFC 9110 section 5.5: CR, LF and NUL are never allowed in a field value, and
# other controls but HTAB are invalid; sending them would split the request.
_UNSENDABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Methods that define a meaning for content get a Content-Length even when
# empty (RFC 9110 section 8.6), as a user agent should send.
_CONTENT_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UpstreamError(Exception):
    """A call upstream failed before its answer was complete."""


class UpstreamConnectError(UpstreamError):
    """No connection to the upstream could be opened."""


class UpstreamProtocolError(UpstreamError):
    """The upstream broke off its answer, or sent one that is not HTTP/1.1."""


class StaleConnection(UpstreamProtocolError):
    """A pooled connection was closed before any byte of the answer came back."""


class UnsendableHeader(ValueError):
    """A header value holds bytes that cannot be written in HTTP/1.1."""


class _Deadlines:
    """Fails waits whose deadline passed, checked every DEADLINE_TICK_SECONDS.

    One timer for all pending waits rather than one per wait: most waits end
    within a millisecond, and arming and cancelling a timer per wait (about
    3 us, or 8 us for ``asyncio.timeout``, measured here) cost more than the
    wait. A timeout fires up to one tick late, which no route's timeouts (of a
    second or so) notice.
    """

    def __init__(self) -> None:
        self._waits: dict[asyncio.Future[None], float] = {}
        self._handle: asyncio.TimerHandle | None = None

    def add(self, waiter: "asyncio.Future[None]", deadline: float) -> None:
        self._waits[waiter] = deadline
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(
                DEADLINE_TICK_SECONDS, self._tick
            )

    def discard(self, waiter: "asyncio.Future[None]") -> None:
        self._waits.pop(waiter, None)

    def _tick(self) -> None:
        self._handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for waiter, deadline in list(self._waits.items()):
            if waiter.done():
                del self._waits[waiter]
            elif deadline <= now:
                del self._waits[waiter]
                waiter.set_exception(TimeoutError())
        if self._waits:
            self._handle = loop.call_later(DEADLINE_TICK_SECONDS, self._tick)


class _Connection(asyncio.Protocol):
    """One connection to an upstream, and the state of its current exchange."""

    def __init__(self, pool: "UpstreamPool") -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.forgotten = False
        self.reused = False
        self.idle_since = 0.0
        self.writer: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self.begin(head=False)
        self.active = False

    def begin(self, *, head: bool) -> None:
        """Reset the exchange state for a new request."""
        self.active = True
        # A fresh parser per exchange: httptools cannot be told that a HEAD
        # answer has no body, so its parser is left mid-message.
        self.parser = httptools.HttpResponseParser(self)
        self.head = head
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.interim = False
        self.complete = False
        self.keep_alive = False
        self.until_close = True
        self.received_any = False
        self.body_sent = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.read_paused = False
        self.error: BaseException | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_connection always makes a stream transport.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:
            # Bytes nobody asked for: the connection's framing is lost.
            self.close()
            return

        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = UpstreamProtocolError(f"invalid HTTP answer: {exc}")
            self.close()
        if self.buffered > READ_HIGH_WATER and not self.read_paused:
            self.read_paused = True
            if self.transport is not None:
                self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        # Returning None closes the transport, which ends in connection_lost.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.active and not self.complete and self.error is None:
            if self.headers_done and self.until_close and not self.head:
                # RFC 9112 section 6.3, rule 8: neither Content-Length nor
                # chunked, so the body ends with the connection.
                self.complete = True
                self.keep_alive = False
            elif not self.received_any and self.reused:
                self.error = StaleConnection("the pooled connection was closed")
            else:
                self.error = UpstreamProtocolError(
                    "the upstream closed the connection before the answer was complete"
                )
        self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self.until_close = False
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints) precedes the
            # real one on the same exchange (RFC 9110 section 15.2).
            self.interim = True
            self.headers = []
            self.until_close = True
            return

        self.status = status
        self.headers_done = True
        if self.head:
            # RFC 9110 section 9.3.2: a HEAD answer's length fields describe
            # the body a GET would get; none follows.
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.head:
            # Bytes after a HEAD answer: the upstream framed it wrongly.
            self.keep_alive = False
            return
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        if not self.head:
            self.complete = True
            # Asked here: llhttp resets its flags for the next message.
            self.keep_alive = self.parser.should_keep_alive()

    # the exchange

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, deadline: float) -> None:
        """Until something arrives, or the loop's clock passes ``deadline``.

        Raises TimeoutError at the deadline (see :class:`_Deadlines`).
        """
        waiter = self.loop.create_future()
        self._waiter = waiter
        deadlines = self.pool.deadlines
        deadlines.add(waiter, deadline)
        try:
            await waiter
        finally:
            self._waiter = None
            deadlines.discard(waiter)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamProtocolError("the upstream closed the connection")
        self.transport.write(data)

    async def send_body(self, body: AsyncIterator[bytes], *, chunked: bool) -> None:
        """Stream ``body`` upstream, waiting whenever the socket's buffer is full."""
        async for chunk in body:
            if chunked:
                # RFC 9112 section 7.1: size in hex, CRLF, data, CRLF.
                self.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                self.write(chunk)
            if self._write_paused:
                await self._drained()
        if chunked:
            self.write(b"0\r\n\r\n")
        self.body_sent = True

    async def _drained(self) -> None:
        self._drain = self.loop.create_future()
        try:
            await self._drain
        finally:
            self._drain = None
        if self.closed:
            raise UpstreamProtocolError("the upstream closed the connection")

    def writer_done(self, writer: "asyncio.Task[None]") -> None:
        # The client's body failed (too large, client gone) or the upstream
        # went away: the exchange fails with that reason.
        failed = not writer.cancelled() and writer.exception() is not None
        if failed and self.error is None:
            self.error = writer.exception()
        self._wake()

    def take(self) -> bytes:
        """The body bytes parsed so far, as one buffer."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return (
            self.complete
            and self.keep_alive
            and self.error is None
            and not self.closed
            and (self.writer is None or self.body_sent)
        )

    def close(self) -> None:
        """Close the connection; the upstream sees it end."""
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()
        self.pool.forget(self)


class UpstreamResponse:
    """An upstream's answer: status and raw headers now, the body as it arrives."""

    __slots__ = (
        "_connection",
        "_deadline",
        "_read_timeout",
        "_released",
        "headers",
        "status",
    )

    def __init__(
        self, connection: _Connection, read_timeout: float, deadline: float
    ) -> None:
        self._connection = connection
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._released = False
        self.status = connection.status
        self.headers = connection.headers

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived (it may not all be read yet)."""
        return self._connection.complete and not self._connection.chunks

    async def read(self) -> bytes:
        """The next part of the body; ``b""`` once it has all been read.

        Raises TimeoutError when nothing arrives within the read timeout,
        :class:`UpstreamProtocolError` when the upstream breaks the answer off.
        """
        connection = self._connection
        while True:
            if connection.chunks:
                return connection.take()
            if connection.complete:
                self.release()
                return b""
            if connection.error is not None:
                raise connection.error
            await connection.wait(
                min(connection.loop.time() + self._read_timeout, self._deadline)
            )

    def release(self) -> None:
        """Give the connection back to the pool, or close it if unfit for reuse."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        if connection.reusable():
            connection.pool.put(connection)
        else:
            connection.close()


def configured_tracer() -> trace.Tracer | None:
    """A tracer for upstream calls when tracing is configured, else None.

    servicekit installs an SDK provider at start-up when ``OTEL_*`` asks for
    tracing; without one, calls skip the span machinery altogether.
    """
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider.get_tracer(__name__)


class UpstreamPool:
    """Kept-alive connections to one upstream, at most ``max_connections`` (0: any).

    With a ``tracer``, each call is a client span (named for the method, with
    ``http.method``, ``http.url`` without its query, ``http.status_code``, as
    the aiohttp and httpx instrumentations record them) whose context goes
    upstream in ``traceparent``, replacing the caller's: the upstream's spans
    are children of the gateway's call. ``tls`` gives the context that
    verifies an ``https://`` upstream as each connection opens (default: the
    system's trust store).

    A pool is made inside the running event loop it serves, and keeps it as
    ``loop``: on Python 3.11 every ``asyncio.get_running_loop()`` makes a
    ``getpid`` system call (a check against forks), and the data path asked
    for the loop five times a request.
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 0,
        idle_timeout: float = 4.0,
        tracer: trace.Tracer | None = None,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        https = parts.scheme == "https"
        self.port = parts.port or (443 if https else 80)
        if https and tls is None:
            tls = _system_trust()
        self.tls = tls if https else None
        # RFC 9112 section 3.2: Host is the target URI's authority.
        self.authority = parts.netloc.rsplit("@", 1)[-1].encode("idna")
        self.base_path = parts.path.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
        self.tracer = tracer
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.open = 0
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self.deadlines = _Deadlines()

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None = None,
        *,
        chunked: bool = False,
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
        deadline: float | None = None,
    ) -> UpstreamResponse:
        """Send a request and wait for its answer's status line and headers.

        ``target`` is the origin-form path and query; ``headers`` are sent as
        given after ``Host``. With a ``body``, ``chunked`` frames it with
        chunked transfer coding, else the headers carry its Content-Length.
        The caller must read the answer to its end or ``release`` it.

        ``connect_timeout`` bounds getting a connection (pool wait included),
        ``read_timeout`` each wait for the upstream, and ``deadline`` (the
        loop's clock) the whole call, reading of the body included; each ends
        in TimeoutError.
        """
        if deadline is None:
            deadline = self.loop.time() + 3600
        if self.tracer is not None:
            return await self._traced(
                self.tracer,
                method,
                target,
                headers,
                body,
                (chunked, connect_timeout, read_timeout, deadline),
            )
        return await self._request(
            method,
            target,
            headers,
            body,
            chunked,
            connect_timeout,
            read_timeout,
            deadline,
        )

    async def _traced(
        self,
        tracer: trace.Tracer,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None,
        options: tuple[bool, float, float, float],
    ) -> UpstreamResponse:
        url = self.origin + self.base_path + target.split("?", 1)[0]
        attributes = {"http.method": method, "http.url": url}
        with tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            replaced = {name.lower() for name in carrier}
            headers = [
                (name, value) for name, value in headers if name.lower() not in replaced
            ]
            headers.extend(carrier.items())
            response = await self._request(method, target, headers, body, *options)
            span.set_attribute("http.status_code", response.status)
            if response.status >= 400:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def _request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None,
        chunked: bool,
        connect_timeout: float,
        read_timeout: float,
        deadline: float,
    ) -> UpstreamResponse:
        head = _request_head(
            method, self.base_path + target, self.authority, headers, body, chunked
        )
        connection = await self._acquire(connect_timeout, deadline)
        exchange = (head, method, body, chunked, read_timeout, deadline)
        try:
            return await self._exchange(connection, *exchange)
        except StaleConnection:
            # RFC 9112 section 9.3.1: a request nothing was answered for may
            # be sent again when it is idempotent and has no body to replay.
            if body is not None or method not in IDEMPOTENT_METHODS:
                raise
        connection = await self._connect(connect_timeout, deadline)
        return await self._exchange(connection, *exchange)

    async def _exchange(
        self,
        connection: _Connection,
        head: bytes,
        method: str,
        body: AsyncIterator[bytes] | None,
        chunked: bool,
        read_timeout: float,
        deadline: float,
    ) -> UpstreamResponse:
        connection.begin(head=method == "HEAD")
        try:
            connection.write(head)
            if body is not None:
                writer = asyncio.create_task(
                    connection.send_body(body, chunked=chunked)
                )
                connection.writer = writer
                writer.add_done_callback(connection.writer_done)
            while not connection.headers_done:
                if connection.error is not None:
                    raise connection.error
                writing = connection.writer is not None and not connection.writer.done()
                # While the body still goes up, the upstream may rightly be
                # silent; only the whole call's deadline bounds that wait.
                if writing:
                    await connection.wait(deadline)
                else:
                    now = connection.loop.time()
                    await connection.wait(min(now + read_timeout, deadline))
        except BaseException:
            connection.close()
            raise
        return UpstreamResponse(connection, read_timeout, deadline)

    async def _acquire(self, connect_timeout: float, deadline: float) -> _Connection:
        connection = self._take_idle()
        if connection is not None:
            return connection
        async with _connect_timeout(connect_timeout, deadline):
            while self.max_connections and self.open >= self.max_connections:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                    elif waiter.done() and not waiter.cancelled():
                        # Woken, then timed out: the free slot goes on.
                        self._wake_waiter()
                    raise
                connection = self._take_idle()
                if connection is not None:
                    return connection
            return await self._open()

    async def _connect(self, connect_timeout: float, deadline: float) -> _Connection:
        async with _connect_timeout(connect_timeout, deadline):
            return await self._open()

    async def _open(self) -> _Connection:
        self.open += 1
        try:
            _, connection = await self.loop.create_connection(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=self.tls() if self.tls is not None else None,
            )
        except OSError as exc:
            self._slot_freed()
            raise UpstreamConnectError(
                f"cannot connect to {self.host}:{self.port}: {exc}"
            ) from exc
        except BaseException:
            self._slot_freed()
            raise
        return connection

    def _take_idle(self) -> _Connection | None:
        now = self.loop.time()
        idle = self._idle
        while idle:
            # The most recently used first: the least likely to be closing.
            connection = idle.pop()
            if connection.closed or now - connection.idle_since >= self.idle_timeout:
                connection.close()
                continue
            connection.reused = True
            return connection
        return None

    def put(self, connection: _Connection) -> None:
        """Keep a connection whose exchange completed for the next request."""
        loop = self.loop
        connection.active = False
        connection.writer = None
        connection.idle_since = loop.time()
        self._idle.append(connection)
        if self._sweep is None:
            self._sweep = loop.call_later(self.idle_timeout, self._close_expired)
        self._wake_waiter()

    def forget(self, connection: _Connection) -> None:
        """Stop counting a closed connection."""
        if connection.forgotten:
            return
        connection.forgotten = True
        if connection in self._idle:
            self._idle.remove(connection)
        self._slot_freed()

    def _slot_freed(self) -> None:
        self.open -= 1
        self._wake_waiter()

    def _wake_waiter(self) -> None:
        # A waiter whose connect timeout expired is cancelled, thus done.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_expired(self) -> None:
        # Closing idle connections on time, not only when next taken, keeps
        # the gateway the side that closes (the upstream's close would race a
        # request) and frees the upstream's sockets.
        self._sweep = None
        now = self.loop.time()
        for connection in [
            c for c in self._idle if now - c.idle_since >= self.idle_timeout
        ]:
            connection.close()
        if self._idle:
            oldest = min(c.idle_since for c in self._idle)
            self._sweep = self.loop.call_later(
                max(0.0, oldest + self.idle_timeout - now), self._close_expired
            )

    async def close(self) -> None:
        """Close every idle connection; exchanges in progress keep theirs."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in list(self._idle):
            connection.close()


def _system_trust() -> Callable[[], ssl.SSLContext]:
    context = ssl.create_default_context()
    return lambda: context


def _connect_timeout(seconds: float, deadline: float) -> asyncio.Timeout:
    loop = asyncio.get_running_loop()
    return asyncio.timeout_at(min(loop.time() + seconds, deadline))


def _request_head(
    method: str,
    target: str,
    authority: bytes,
    headers: list[tuple[str, str]],
    body: AsyncIterator[bytes] | None,
    chunked: bool,
) -> bytes:
    fields = []
    values = []
    has_length = False
    for name, value in headers:
        if name.lower() == "content-length":
            if chunked:
                # RFC 9112 section 6.3: Transfer-Encoding overrides it, and
                # sending both would invite request smuggling.
                continue
            has_length = True
        fields.append(f"{name}: {value}\r\n")
        values.append(value)
    if body is not None and chunked:
        fields.append("Transfer-Encoding: chunked\r\n")
    elif not has_length and method in _CONTENT_METHODS:
        fields.append("Content-Length: 0\r\n")
    if _UNSENDABLE.search("\t".join(values)) or _UNSENDABLE.search(target):
        raise UnsendableHeader("a header value holds control characters")

    return b"%b %b HTTP/1.1\r\nHost: %b\r\n%b\r\n" % (
        method.encode("ascii"),
        target.encode("latin-1"),
        authority,
        "".join(fields).encode("latin-1"),
    )
