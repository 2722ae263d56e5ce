"""Running a service under uvicorn, one process per container.

uvicorn already stops accepting connections on SIGTERM and lets in-flight
requests finish; the grace period here bounds how long that may take, and must
stay below Kubernetes' ``terminationGracePeriodSeconds``.
"""

from collections.abc import Sequence

import uvicorn
from starlette.types import ASGIApp


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    trusted_proxies: Sequence[str] = ("127.0.0.1",),
    graceful_shutdown_seconds: int = 20,
    proxy_headers: bool = True,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain and return.

    ``proxy_headers=False`` leaves ``X-Forwarded-*`` to the application (the
    gateway), which then sees the real peer address.
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
    uvicorn.Server(config).run()
