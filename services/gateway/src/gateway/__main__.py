"""``python -m gateway``."""

from gateway.app import create_app
from gateway.settings import Settings
from servicekit.cli import run_service


def main() -> None:
    """Serve the gateway."""
    run_service("gateway", Settings, create_app)


if __name__ == "__main__":
    main()
