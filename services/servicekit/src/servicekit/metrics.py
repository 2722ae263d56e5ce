"""Prometheus metrics every service exports, on a port of their own.

The HTTP metrics follow the RED method (rate, errors, duration) with labels
that stay bounded whatever clients send: the method is one of RFC 9110's (or
``other``), the route is the matched template (or ``unmatched``), never the raw
path, and the status is a three-digit code.

Metrics are served on the service's port + 1000 by prometheus-client's own
threaded server, so the public port never answers ``/metrics`` and a scrape
still answers while the event loop is busy. One uvicorn process runs per
container, so prometheus-client's multiprocess mode is not needed.
"""

import asyncio
import logging
import threading
import time
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import start_http_server as start_prometheus_server

logger = logging.getLogger(__name__)

METRICS_PORT_OFFSET = 1000

# RFC 9110 section 9 and RFC 5789 (PATCH); anything else is folded into
# "other" so that a client inventing methods cannot create series.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
OTHER_METHOD = "other"

# From a millisecond (a cached answer) to a minute (the gateway's upstream
# timeout), dense where API latencies usually fall.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


# How late the event loop ran its timer: from about the timers' own resolution
# (uvloop counts in milliseconds) to a loop stalled for seconds.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LAG_INTERVAL_SECONDS = 0.02


def metrics_port(port: int) -> int:
    """The port a service listening on ``port`` serves its metrics on."""
    return port + METRICS_PORT_OFFSET


def method_label(method: str) -> str:
    """``method`` if it is a standard HTTP method, otherwise ``other``."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class HttpMetrics:
    """Request count, latency and in-flight requests of one HTTP server."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from receiving a request to finishing its answer.",
            ("method", "route"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "HTTP requests being served right now.",
            registry=registry,
        )
        # Resolving a labelled child takes a lock and builds tuples; the label
        # sets are bounded, so each child is resolved once and kept.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and record how long it took."""
        method = method_label(method)

        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self.requests.labels(method, route, str(status))
            self._counters[(method, route, status)] = counter
        counter.inc()

        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self.duration.labels(method, route)
            self._histograms[(method, route)] = histogram
        histogram.observe(seconds)


_process_metrics: HttpMetrics | None = None


def http_metrics() -> HttpMetrics:
    """The process's HTTP metrics in the default registry, created on first use.

    Every app built in one process shares them, because a metric name can be
    registered only once per registry.
    """
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = HttpMetrics()
    return _process_metrics


class EventLoopLag:
    """How late the event loop runs a timer due every ``interval`` seconds.

    Every request a process serves waits while its one event loop is busy
    elsewhere: a blocking call, a long computation, a backlog of ready
    callbacks, or a process that the kernel (or a virtual machine's host) did
    not let run. Such a stall shows in every route's latency at once; this
    histogram tells it from a slow upstream or database. Stalls shorter than
    the interval are seen only when they cover a tick's due time.
    """

    def __init__(
        self, histogram: Histogram, interval: float = LAG_INTERVAL_SECONDS
    ) -> None:
        self.histogram = histogram
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        """Tick on the running loop until :meth:`stop`."""
        self._schedule(asyncio.get_running_loop())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        # The loop's own clock may lag the present by the iteration under way;
        # lateness is measured against the real one.
        self._due = time.perf_counter() + self.interval
        self._handle = loop.call_later(self.interval, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.histogram.observe(max(0.0, time.perf_counter() - self._due))
        self._schedule(loop)


def lag_histogram(registry: CollectorRegistry = REGISTRY) -> Histogram:
    return Histogram(
        "event_loop_lag_seconds",
        f"How late the event loop ran a timer due every "
        f"{LAG_INTERVAL_SECONDS * 1000:.0f} ms: time it could serve no request.",
        buckets=LAG_BUCKETS,
        registry=registry,
    )


_process_lag: EventLoopLag | None = None


def event_loop_lag() -> EventLoopLag:
    """The process's event loop monitor in the default registry, made once."""
    global _process_lag
    if _process_lag is None:
        _process_lag = EventLoopLag(lag_histogram())
    return _process_lag


class MetricsServer:
    """The Prometheus endpoint of a service, on its own address and port.

    The default registry already holds the process, platform and garbage
    collector collectors, so ``process_*`` and ``python_*`` series come along.
    """

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry = REGISTRY
    ) -> None:
        self.host = host
        self.port = port
        self.registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen and answer scrapes from a daemon thread."""
        self._server, self._thread = start_prometheus_server(
            self.port, addr=self.host, registry=self.registry
        )
        logger.info(
            "metrics server started", extra={"host": self.host, "port": self.port}
        )

    def stop(self) -> None:
        """Stop answering scrapes and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        logger.info("metrics server stopped", extra={"port": self.port})
