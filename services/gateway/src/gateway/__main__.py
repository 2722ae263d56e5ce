"""``python -m gateway``."""

from gateway.app import create_app
from gateway.settings import Settings
from servicekit.cli import run_service


def main() -> None:
    """Serve the gateway."""
    # The gateway reads X-Forwarded-* itself (gateway.headers): it needs the
    # real peer to extend the chain, which uvicorn would overwrite.
    run_service("gateway", Settings, create_app, proxy_headers=False)


if __name__ == "__main__":
    main()
