"""``python -m identity [serve|migrate|rotate-keys|purge]``."""

from identity.app import create_app
from identity.keys.command import run_rotate_keys
from identity.purge import run_purge
from identity.settings import Settings
from identity.storage.database import migrate
from servicekit.cli import run_service


def main() -> None:
    """Serve identity, migrate its database, rotate its keys, or purge it."""
    run_service(
        "identity",
        Settings,
        create_app,
        migrate=lambda s: migrate(s.database_url),
        maintenance={"rotate-keys": run_rotate_keys, "purge": run_purge},
    )


if __name__ == "__main__":
    main()
