"""``python -m identity [serve|migrate|rotate-keys|purge]``."""

import sys
from collections.abc import Callable

from identity.app import create_app
from identity.settings import Settings
from identity.storage.database import migrate
from servicekit.cli import run_service
from servicekit.config import load_settings
from servicekit.logs import configure_logging


def _maintenance_command(argv: list[str]) -> Callable[[Settings], None] | None:
    """The one-off command ``argv`` names, imported only when it is asked for."""
    if argv == ["rotate-keys"]:
        from identity.keys.command import run_rotate_keys

        return run_rotate_keys
    if argv == ["purge"]:
        from identity.purge import run_purge

        return run_purge
    return None


def main() -> None:
    """Serve identity, migrate its database, rotate its keys, or purge it."""
    command = _maintenance_command(sys.argv[1:])
    if command is not None:
        settings = load_settings(Settings, "identity")
        configure_logging("identity", settings.log_level)
        command(settings)
        return
    run_service(
        "identity", Settings, create_app, migrate=lambda s: migrate(s.database_url)
    )


if __name__ == "__main__":
    main()
