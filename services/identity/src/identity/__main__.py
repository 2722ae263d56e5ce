"""``python -m identity [serve|migrate|rotate-keys]``."""

import sys

from identity.app import create_app
from identity.settings import Settings
from identity.storage.database import migrate
from servicekit.cli import run_service
from servicekit.config import load_settings
from servicekit.logs import configure_logging


def main() -> None:
    """Serve identity, migrate its database, or rotate its signing keys."""
    if sys.argv[1:] == ["rotate-keys"]:
        from identity.keys.command import run_rotate_keys

        settings = load_settings(Settings, "identity")
        configure_logging("identity", settings.log_level)
        run_rotate_keys(settings)
        return
    run_service(
        "identity", Settings, create_app, migrate=lambda s: migrate(s.database_url)
    )


if __name__ == "__main__":
    main()
