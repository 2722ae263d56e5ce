"""Running a service under uvicorn, one process per container.

uvicorn already stops accepting connections on SIGTERM and lets in-flight
requests finish; the grace period here bounds how long that may take, and must
stay below Kubernetes' ``terminationGracePeriodSeconds``.
"""

import asyncio
import gc
import logging
import socket
import sys
from collections.abc import Callable, Sequence

import uvicorn
from starlette.types import ASGIApp

from servicekit.metrics import MetricsServer, event_loop_lag

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server, running ``after_shutdown`` once it has drained.

    uvicorn re-raises the signal that stopped it as soon as it returns, which
    ends the process before code after ``run()`` could flush anything; this
    hook runs while the process still lives.
    """

    def __init__(
        self, config: uvicorn.Config, after_shutdown: Sequence[Callable[[], None]]
    ) -> None:
        super().__init__(config)
        self.after_shutdown = after_shutdown

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        freeze_start_up_objects()
        event_loop_lag().start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        event_loop_lag().stop()
        await super().shutdown(sockets)
        for callback in self.after_shutdown:
            try:
                await asyncio.to_thread(callback)
            except Exception:
                logger.exception("shutdown step failed")


def freeze_start_up_objects() -> None:
    """Move what start-up made (modules, settings, routes, keys) out of the GC's sight.

    A full collection traverses every tracked object; with the libraries a
    service imports that took 45-50 ms in the gateway under load, about every
    15 s, and every request arriving meanwhile waited it out (hundreds at the
    gateway's rates, enough to move its p99). Frozen objects are never
    traversed again, so a full collection scans only what requests created.
    Garbage goes first, so that none of it is kept forever.
    """
    gc.collect()
    gc.freeze()


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    trusted_proxies: Sequence[str] = ("127.0.0.1",),
    graceful_shutdown_seconds: int = 20,
    proxy_headers: bool = True,
    metrics_port: int | None = None,
    after_shutdown: Sequence[Callable[[], None]] = (),
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain and return.

    ``proxy_headers=False`` leaves ``X-Forwarded-*`` to the application (the
    gateway), which then sees the real peer address. With ``metrics_port``,
    Prometheus metrics are served on ``host`` at that port for exactly as long
    as the app is. ``after_shutdown`` callbacks (such as flushing buffered
    spans) run once requests have drained.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=list(trusted_proxies),
        timeout_graceful_shutdown=graceful_shutdown_seconds,
        # Longer than the gateway's pooled idle timeout, so that the gateway
        # always closes an idle connection before this server does.
        timeout_keep_alive=15,
    )
    metrics = MetricsServer(host, metrics_port) if metrics_port is not None else None
    if metrics is not None:
        try:
            metrics.start()
        except OSError as exc:
            # As uvicorn does for its own port: a service nobody can scrape
            # would run unobserved, so it does not start.
            logger.error(
                "metrics port unavailable",
                extra={"host": host, "port": metrics_port, "error": str(exc)},
            )
            sys.exit(1)
    steps = [*after_shutdown, *([metrics.stop] if metrics is not None else [])]
    try:
        _Server(config, steps).run()
    finally:
        # Also when uvicorn returns without a signal (start-up failed).
        for step in steps:
            step()
