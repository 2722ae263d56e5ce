"""``python -m identity [serve|migrate]``."""

from identity.app import create_app
from identity.settings import Settings
from identity.storage.database import migrate
from servicekit.cli import run_service


def main() -> None:
    """Serve identity, or migrate its database."""
    run_service(
        "identity", Settings, create_app, migrate=lambda s: migrate(s.database_url)
    )


if __name__ == "__main__":
    main()
