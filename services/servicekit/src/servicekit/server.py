"""Running a service under uvicorn, one process per container.

uvicorn already stops accepting connections on SIGTERM and lets in-flight
requests finish; the grace period here bounds how long that may take, and must
stay below Kubernetes' ``terminationGracePeriodSeconds``.
"""

import logging
import sys
from collections.abc import Sequence

import uvicorn
from starlette.types import ASGIApp

from servicekit.metrics import MetricsServer

logger = logging.getLogger(__name__)


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    trusted_proxies: Sequence[str] = ("127.0.0.1",),
    graceful_shutdown_seconds: int = 20,
    metrics_port: int | None = None,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain and return.

    With ``metrics_port``, Prometheus metrics are served on ``host`` at that
    port for exactly as long as the app is.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
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
    try:
        uvicorn.Server(config).run()
    finally:
        if metrics is not None:
            metrics.stop()
