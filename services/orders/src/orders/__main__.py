"""``python -m orders [serve|migrate|purge]``."""

import sys

from orders.app import create_app
from orders.settings import Settings
from orders.storage.database import migrate
from servicekit.cli import run_service
from servicekit.config import load_settings
from servicekit.logs import configure_logging


def main() -> None:
    """Serve orders, migrate its database, or purge its expired keys."""
    if sys.argv[1:] == ["purge"]:
        from orders.purge import run_purge

        settings = load_settings(Settings, "orders")
        configure_logging("orders", settings.log_level)
        run_purge(settings)
        return
    run_service(
        "orders", Settings, create_app, migrate=lambda s: migrate(s.database_url)
    )


if __name__ == "__main__":
    main()
