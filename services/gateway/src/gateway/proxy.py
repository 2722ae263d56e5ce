"""The request pipeline: from a matched route to the upstream's streamed answer.

For each request, in this order: the body limit on ``Content-Length``, the
bearer token when the route needs one, the rate limit, the upstream's circuit
breaker, then the call itself, retried when the route allows it. CORS
preflights never get here (:mod:`gateway.cors` answers them first).

Bodies flow through in chunks in both directions and are never held whole.
Bytes are passed as received: the upstream client
(:mod:`gateway.upstream_client`) does not decompress, so ``Content-Encoding``
and ``Content-Length`` stay true.

A client that goes away cancels its upstream call: a watcher waits for the
ASGI ``http.disconnect`` once the request body is read, and cancels the
request's task, which closes the upstream connection (the upstream sees EOF).
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Protocol
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import metrics
from gateway.auth import Authenticator
from gateway.circuit import CircuitBreaker, CircuitOpen
from gateway.errors import (
    BadGateway,
    BadRequest,
    GatewayError,
    GatewayTimeout,
    HeadersTooLarge,
    PayloadTooLarge,
    ServiceUnavailable,
    send_problem,
)
from gateway.headers import Forwarding, Network, OutboundRequest, response_headers
from gateway.rate_limit import Decision, send_refusal
from gateway.retries import IDEMPOTENT_METHODS, RetryBudget, backoff_delay
from gateway.routing import Route, RouteTable, Upstream
from gateway.upstream_client import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    configured_tracer,
)
from gateway.upstream_tls import UpstreamTls
from servicekit import context

logger = logging.getLogger(__name__)

# Well above what browsers send (Chrome caps a request's headers near 256 KB,
# but real ones stay under 8 KB) and small enough that a header flood is cheap.
MAX_HEADER_BYTES = 64 * 1024
WATCH_AFTER_SECONDS = 0.05
# Characters a path segment may hold unencoded (RFC 3986 section 3.3); the
# ASGI path is decoded, so anything else is percent-encoded again.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9/!$&'()*+,;=:@\-._~]")


class Limiter(Protocol):
    """What the pipeline needs of :class:`gateway.rate_limit.RateLimiter`."""

    async def acquire(self, policy_name: str, key: str) -> Decision: ...


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


def new_upstream_pool(name: str, upstream: Upstream) -> UpstreamPool:
    """A pool of kept-alive connections to the upstream ``name``."""
    # Without files of its own an https:// upstream is checked against the
    # system's trust store, the pool's default.
    tls = UpstreamTls(name, upstream) if upstream.tls_files else None
    return UpstreamPool(
        str(upstream.url),
        max_connections=upstream.max_connections,
        idle_timeout=upstream.idle_timeout_seconds,
        # Pools are made inside the running loop, after servicekit set up
        # tracing (or did not).
        tracer=configured_tracer(),
        tls=tls.context if tls is not None else None,
    )


class RequestBody:
    """The client's body as an async iterator, counted against the route's limit."""

    __slots__ = ("client_gone", "done", "limit", "receive", "received", "too_large")

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.received = 0
        self.too_large = False
        self.client_gone = False
        self.done = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    self.client_gone = True
                    raise ClientGone
                chunk = message.get("body", b"")
                if chunk:
                    self.received += len(chunk)
                    if self.received > self.limit:
                        # Checked on the bytes themselves: a chunked body has no
                        # Content-Length to refuse up front.
                        self.too_large = True
                        raise PayloadTooLarge(_too_large(self.limit))
                    yield chunk
                if not message.get("more_body", False):
                    return
        finally:
            self.done.set()


def _too_large(limit: int) -> str:
    return f"The request body is larger than this route's limit of {limit} bytes."


class RouteRuntime:
    """A route with everything its requests need, built once at start-up."""

    __slots__ = (
        "auth",
        "breaker",
        "budget",
        "duration",
        "errors",
        "max_body",
        "path_format",
        "prefix",
        "rate_limit",
        "retry",
        "route",
        "strip",
        "timeouts",
        "upstream",
    )

    def __init__(self, route: Route, breaker: CircuitBreaker):
        self.route = route
        self.upstream = route.upstream
        self.prefix = route.prefix.rstrip("/")
        self.strip = route.strip_prefix
        self.timeouts = route.timeouts
        self.retry = route.retry
        self.budget = RetryBudget(route.retry.budget_ratio, route.retry.budget_reserve)
        self.breaker = breaker
        self.auth = route.auth if route.auth.required else None
        self.rate_limit = route.rate_limit
        self.max_body = route.max_body_bytes
        self.duration = metrics.UPSTREAM_REQUEST_DURATION.labels(route.upstream)
        self.errors = {
            kind: metrics.UPSTREAM_ERRORS.labels(route.upstream, kind)
            for kind in ("connect", "timeout", "status", "protocol", "circuit_open")
        }
        # The label servicekit's access log reads from scope["route"].
        self.path_format = route.path_format

    def matches(self, path: str) -> bool:
        prefix = self.prefix
        return path.startswith(prefix) and (
            len(path) == len(prefix) or path[len(prefix)] == "/"
        )

    def target(self, path: str, query: bytes) -> str:
        """The origin-form request target upstream (RFC 9112 section 3.2.1)."""
        if self.strip:
            path = path[len(self.prefix) :] or "/"
        if _NEEDS_QUOTING.search(path):
            path = quote(path, safe=_PATH_SAFE)
        if query:
            # The query goes as the client sent it: bytes passed as received.
            return f"{path}?{query.decode('latin-1')}"
        return path


class Proxy:
    """Forwards requests along the route table over pooled connections."""

    def __init__(
        self,
        table: RouteTable,
        trusted_proxies: Sequence[Network],
        *,
        authenticator: Authenticator | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.table = table
        self.forwarding = Forwarding(trusted_proxies)
        self.authenticator = authenticator
        self.limiter = limiter
        self.breakers = {
            name: CircuitBreaker(name, upstream.circuit_breaker)
            for name, upstream in table.upstreams.items()
        }
        runtimes = [
            RouteRuntime(route, self.breakers[route.upstream]) for route in table.routes
        ]
        # Longest prefix first, so the first match is the most specific one.
        self.routes = sorted(runtimes, key=lambda r: len(r.prefix), reverse=True)
        self._pools: dict[str, UpstreamPool] = {}
        self._watch_queue = _WatchQueue()

    def route_for(self, path: str) -> RouteRuntime | None:
        """The most specific route for ``path``."""
        for runtime in self.routes:
            if runtime.matches(path):
                return runtime
        return None

    def _pool(self, name: str) -> UpstreamPool:
        pool = self._pools.get(name)
        if pool is None:
            # Created on first use, inside the running event loop.
            pool = new_upstream_pool(name, self.table.upstreams[name])
            self._pools[name] = pool
        return pool

    async def close(self) -> None:
        """Close pooled upstream connections."""
        for pool in self._pools.values():
            await pool.close()

    async def handle(
        self, runtime: RouteRuntime, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the pipeline for one request; every refusal is a problem+json."""
        try:
            await self._handle(runtime, scope, receive, send)
        except GatewayError as error:
            await send_problem(send, error)

    async def _handle(
        self, runtime: RouteRuntime, scope: Scope, receive: Receive, send: Send
    ) -> None:
        client = scope.get("client")
        request = self.forwarding.outbound(
            scope["headers"],
            peer=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
            request_id=context.request_id.get() or "",
        )
        if request.header_bytes > MAX_HEADER_BYTES:
            raise HeadersTooLarge(
                f"The request's header fields exceed {MAX_HEADER_BYTES} bytes."
            )
        if request.content_length == -1:
            raise BadRequest("The Content-Length header is not a number.")
        if (
            request.content_length is not None
            and request.content_length > runtime.max_body
        ):
            raise PayloadTooLarge(_too_large(runtime.max_body))

        key = request.client_address or "unknown"
        if runtime.auth is not None and self.authenticator is not None:
            token = await self.authenticator.authenticate(
                request.authorization, runtime.auth, scope["method"]
            )
            subject = token.subject or token.client_id
            if subject:
                key = "sub:" + subject

        extra_headers: list[tuple[bytes, bytes]] = []
        if runtime.rate_limit is not None and self.limiter is not None:
            decision = await self.limiter.acquire(runtime.rate_limit, key)
            if not decision.allowed:
                await send_refusal(send, decision)
                return
            extra_headers = decision.headers()

        await self._forward(runtime, scope, receive, send, request, extra_headers)

    async def _forward(
        self,
        runtime: RouteRuntime,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: OutboundRequest,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> None:
        method: str = scope["method"]
        has_body = request.chunked or bool(request.content_length)
        body = RequestBody(receive, runtime.max_body) if has_body else None
        # A streamed body cannot be sent twice, so only bodiless idempotent
        # requests are retried (RFC 9110 section 9.2.2).
        retriable = body is None and method in IDEMPOTENT_METHODS
        pool = self._pool(runtime.upstream)
        call = _Call(
            runtime,
            pool,
            method,
            runtime.target(scope["path"], scope.get("query_string", b"")),
            request,
            body,
            send,
            extra_headers,
            _DisconnectWatcher(receive, body, self._watch_queue, pool.loop),
        )
        runtime.budget.deposit()
        attempt = 1
        try:
            while True:
                self._admit(runtime)
                last = not retriable or attempt >= runtime.retry.attempts
                if await call.attempt(last=last):
                    return
                logger.info(
                    "upstream retried",
                    extra={"upstream": runtime.upstream, "attempt": attempt + 1},
                )
                await asyncio.sleep(backoff_delay(runtime.retry, attempt))
                attempt += 1
        except asyncio.CancelledError:
            if not call.watcher.disconnected:
                raise
            # The client left; its upstream call is closed, nobody to answer.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            logger.info("client disconnected", extra={"upstream": runtime.upstream})
        finally:
            call.watcher.stop()

    @staticmethod
    def _admit(runtime: RouteRuntime) -> None:
        try:
            runtime.breaker.acquire()
        except CircuitOpen as exc:
            runtime.errors["circuit_open"].inc()
            retry_after = str(max(1, round(exc.retry_after))).encode()
            raise ServiceUnavailable(
                f"The upstream {runtime.upstream!r} is failing; the gateway stopped "
                f"calling it for a while.",
                headers=[(b"retry-after", retry_after)],
            ) from exc


class _Call:
    """One request's calls upstream, the first and its retries."""

    __slots__ = (
        "body",
        "extra_headers",
        "method",
        "pool",
        "request",
        "response_started",
        "runtime",
        "send",
        "target",
        "watcher",
    )

    def __init__(
        self,
        runtime: RouteRuntime,
        pool: UpstreamPool,
        method: str,
        target: str,
        request: OutboundRequest,
        body: RequestBody | None,
        send: Send,
        extra_headers: list[tuple[bytes, bytes]],
        watcher: "_DisconnectWatcher",
    ) -> None:
        self.runtime = runtime
        self.pool = pool
        self.method = method
        self.target = target
        self.request = request
        self.body = body
        self.send = send
        self.extra_headers = extra_headers
        self.watcher = watcher
        self.response_started = False

    def _may_retry(self, last: bool) -> bool:
        return not last and self.runtime.budget.withdraw()

    async def attempt(self, *, last: bool) -> bool:
        """Call upstream once; False when the call failed and may be retried."""
        runtime = self.runtime
        breaker = runtime.breaker
        timeouts = runtime.timeouts
        body = self.body
        loop = self.pool.loop
        started = loop.time()
        response: UpstreamResponse | None = None
        try:
            response = await self.pool.request(
                self.method,
                self.target,
                self.request.headers,
                body.chunks() if body is not None else None,
                chunked=self.request.chunked,
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                deadline=started + timeouts.total,
            )
            status = response.status
            failed = status in breaker.policy.failure_statuses
            breaker.record(not failed)
            if failed:
                runtime.errors["status"].inc()
            if status in runtime.retry.statuses and self._may_retry(last):
                return False
            await self._relay(response, started + timeouts.total)
            return True
        except asyncio.CancelledError:
            breaker.release()
            raise
        except GatewayError:
            breaker.release()
            raise
        except ClientGone:
            # The client left mid-body; nobody is there to answer.
            breaker.release()
            return True
        except TimeoutError as exc:
            breaker.record(False)
            runtime.errors["timeout"].inc()
            logger.warning("upstream timed out", extra={"upstream": runtime.upstream})
            if self.response_started:
                return True
            raise GatewayTimeout(
                f"The upstream {runtime.upstream!r} did not answer in time."
            ) from exc
        except UpstreamConnectError as exc:
            breaker.record(False)
            runtime.errors["connect"].inc()
            logger.warning(
                "upstream unreachable",
                extra={"upstream": runtime.upstream, "error": repr(exc)},
            )
            if self._may_retry(last):
                return False
            raise BadGateway(
                f"The upstream {runtime.upstream!r} could not be reached."
            ) from exc
        except (UpstreamError, ValueError) as exc:
            return self._failed(exc, last)
        finally:
            if response is not None:
                # Back to the pool when complete, else closed (the upstream
                # sees EOF): a half-read answer cannot be reused.
                response.release()
            runtime.duration.observe(loop.time() - started)

    def _failed(self, exc: Exception, last: bool) -> bool:
        runtime = self.runtime
        body = self.body
        if body is not None and body.too_large:
            runtime.breaker.release()
            raise PayloadTooLarge(_too_large(body.limit)) from exc
        if body is not None and body.client_gone:
            runtime.breaker.release()
            return True
        if not isinstance(exc, UpstreamError):
            # Header values that cannot be written in HTTP/1.1 (control bytes).
            runtime.breaker.release()
            raise BadRequest("The request's headers cannot be forwarded.") from exc

        runtime.breaker.record(False)
        runtime.errors["protocol"].inc()
        logger.warning(
            "upstream failed", extra={"upstream": runtime.upstream, "error": repr(exc)}
        )
        if self.response_started:
            # Too late for a problem: the client sees the answer cut short.
            return True
        if self._may_retry(last):
            return False
        raise BadGateway(
            f"The upstream {runtime.upstream!r} broke off its answer."
        ) from exc

    async def _relay(self, response: UpstreamResponse, deadline: float) -> None:
        headers = response_headers(response.headers)
        if self.extra_headers:
            headers.extend(self.extra_headers)
        send = self.send
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": headers,
            }
        )
        self.response_started = True
        chunk = await response.read()
        if response.complete:
            # The whole answer is here: end it in this message, one send
            # fewer for the common small answer.
            response.release()
            self.watcher.stop()
            await send({"type": "http.response.body", "body": chunk})
            return

        # A streamed answer: the route's total timeout also bounds the time
        # a slow client takes to accept it (send waits while it does not read).
        async with asyncio.timeout_at(deadline):
            while chunk:
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
                chunk = await response.read()
        # Past this point a disconnect is the normal end of the exchange.
        self.watcher.stop()
        await send({"type": "http.response.body", "body": b""})


class _DisconnectWatcher:
    """Cancels the request's task when the client disconnects.

    It listens only after the request body is read (before that the body's
    own reads see the disconnect), and is stopped before the last byte of the
    answer, after which a disconnect is the normal end of the exchange.

    The listening task starts only once a request has run for
    :data:`WATCH_AFTER_SECONDS` (up to twice that, see :class:`_WatchQueue`):
    most calls are over sooner, and a task costs about 10 us, so a client
    leaving within that time is noticed when it ends.
    """

    __slots__ = ("_body", "_owner", "_queue", "_receive", "_task", "disconnected")

    def __init__(
        self,
        receive: Receive,
        body: RequestBody | None,
        queue: "_WatchQueue",
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.disconnected = False
        self._receive = receive
        self._body = body
        # Given the loop, current_task() does not look it up (a getpid call
        # on Python 3.11, see UpstreamPool).
        self._owner = asyncio.current_task(loop)
        self._task: asyncio.Task[None] | None = None
        self._queue = queue
        queue.add(self, loop)

    def start(self) -> None:
        """Begin listening for the client's disconnect."""
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        body = self._body
        if body is not None:
            await body.done.wait()
            if body.client_gone or body.too_large:
                return
        # A bodiless request still has its (empty) http.request message first.
        message: Message = await self._receive()
        while message["type"] != "http.disconnect":
            message = await self._receive()
        if self._owner is not None:
            self.disconnected = True
            self._owner.cancel()

    def stop(self) -> None:
        self._queue.discard(self)
        if self._task is not None:
            self._task.cancel()


class _WatchQueue:
    """Starts the watchers of requests older than WATCH_AFTER_SECONDS.

    One timer for all requests rather than one each: arming and cancelling a
    timer per request cost about 3 us here, a dict entry a tenth of that. A
    watcher therefore starts between one and two periods after its request.
    """

    __slots__ = ("_handle", "_pending")

    def __init__(self) -> None:
        self._pending: dict[_DisconnectWatcher, float] = {}
        self._handle: asyncio.TimerHandle | None = None

    def add(self, watcher: _DisconnectWatcher, loop: asyncio.AbstractEventLoop) -> None:
        self._pending[watcher] = loop.time()
        if self._handle is None:
            self._handle = loop.call_later(WATCH_AFTER_SECONDS, self._tick)

    def discard(self, watcher: _DisconnectWatcher) -> None:
        self._pending.pop(watcher, None)

    def _tick(self) -> None:
        self._handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for watcher, since in list(self._pending.items()):
            if now - since >= WATCH_AFTER_SECONDS:
                del self._pending[watcher]
                watcher.start()
        if self._pending:
            self._handle = loop.call_later(WATCH_AFTER_SECONDS, self._tick)


class ProxyMiddleware:
    """Sends requests that match a route upstream; others go to the app."""

    def __init__(self, app: ASGIApp, *, proxy: Proxy) -> None:
        self.app = app
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = None
        if scope["type"] == "http":
            runtime = self.proxy.route_for(scope["path"])
        if runtime is None:
            await self.app(scope, receive, send)
            return

        scope["route"] = runtime
        await self.proxy.handle(runtime, scope, receive, send)
