"""``python -m orders [serve|migrate|purge]``."""

from orders.app import create_app
from orders.purge import run_purge
from orders.settings import Settings
from orders.storage.database import migrate
from servicekit.cli import run_service


def main() -> None:
    """Serve orders, migrate its database, or purge its expired keys."""
    run_service(
        "orders",
        Settings,
        create_app,
        migrate=lambda s: migrate(s.database_url),
        maintenance={"purge": run_purge},
    )


if __name__ == "__main__":
    main()
