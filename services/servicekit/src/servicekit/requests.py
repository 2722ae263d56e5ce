"""Request ids and the access log, as one ASGI middleware.

A well-formed inbound ``X-Request-ID`` is kept, so that a caller's id follows
its request through every service; anything else is replaced by a fresh one,
because an id that is echoed into logs and headers must not carry arbitrary
bytes. The id is echoed on the response and stored in a context variable that
log lines and problem bodies read.
"""

import logging
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import context
from servicekit.metrics import HttpMetrics, method_label
from servicekit.problems import PROBLEM_MEDIA_TYPE, problem_body
from servicekit.telemetry import name_server_span

REQUEST_ID_HEADER = b"x-request-id"

# Printable, header-safe and short: enough for UUIDs, ULIDs and most tracing ids.
_WELL_FORMED_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

access_logger = logging.getLogger("servicekit.access")
logger = logging.getLogger(__name__)


def new_request_id() -> str:
    """A fresh random request id: 128 random bits in hex (a UUID4 holds 122).

    An id names a request in logs and is no secret (a caller may choose its
    own), so it needs to be unique, not unpredictable. ``random``'s generator,
    seeded from the system's at import and again in a forked child, makes
    one without a system call, as OpenTelemetry makes trace ids;
    ``os.urandom`` was one ``getrandom`` call per request, about 4% of the
    gateway's event loop samples under load on the shared VM here (py-spy).
    """
    return f"{random.getrandbits(128):032x}"


def accepted_request_id(value: bytes | None) -> str:
    """The inbound id if it is well formed, otherwise a fresh one."""
    if value is not None and _WELL_FORMED_ID.fullmatch(value):
        return value.decode("ascii")
    return new_request_id()


def route_template(scope: Scope) -> str:
    """The matched route's path template, never the raw path (it may hold ids)."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _internal_error_body() -> bytes:
    import orjson

    return orjson.dumps(
        problem_body(
            500,
            "The server failed to answer; the request id identifies the failure "
            "in the logs.",
        )
    )


def _internal_error_start() -> Message:
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode())],
    }


class RequestContextMiddleware:
    """Assigns the request id, echoes it, and writes one access log line.

    With ``metrics`` it also counts the request and its duration by route
    template, and names the tracing server span after that template: the
    route is known only once the app has answered, and doing all three here
    costs one middleware layer instead of three on the gateway's hot path.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        skip_access_log: frozenset[str] = frozenset(),
        metrics: HttpMetrics | None = None,
    ):
        self.app = app
        self.skip_access_log = skip_access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        inbound = next(
            (value for name, value in scope["headers"] if name == REQUEST_ID_HEADER),
            None,
        )
        request_id = accepted_request_id(inbound)
        token = context.request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False
        metrics = self.metrics
        if metrics is not None:
            metrics.in_flight.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            nonlocal response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, request_id.encode("ascii")))
                message["headers"] = headers
                # Now, not after the answer: the tracing middleware ends the
                # server span with the last body chunk.
                name_server_span(method_label(scope["method"]), route_template(scope))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here rather than by Starlette's outermost error handler,
            # which runs after this middleware and would lose the request id.
            logger.exception("unhandled error", extra={"path": scope["path"]})
            if response_started:
                raise
            await send_with_id(_internal_error_start())
            await send_with_id(
                {"type": "http.response.body", "body": _internal_error_body()}
            )
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            if metrics is not None:
                metrics.observe(scope["method"], route, status, elapsed)
                metrics.in_flight.dec()
            # The level check first: at WARNING (the gateway in production) the
            # fields of a line nobody writes are not built at all.
            if access_logger.isEnabledFor(logging.INFO) and (
                scope["path"] not in self.skip_access_log
            ):
                client = scope.get("client")
                access_logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": client[0] if client else None,
                    },
                )
            context.request_id.reset(token)
