"""``python -m orders [serve|migrate]``."""

from orders.app import create_app
from orders.settings import Settings
from orders.storage.database import migrate
from servicekit.cli import run_service


def main() -> None:
    """Serve orders, or migrate its database."""
    run_service(
        "orders", Settings, create_app, migrate=lambda s: migrate(s.database_url)
    )


if __name__ == "__main__":
    main()
