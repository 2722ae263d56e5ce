"""identity's database: the engine, its migrations, and session factory."""

from pathlib import Path

from servicekit.database import upgrade_database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrate(database_url: str) -> None:
    """Bring the database to the newest schema."""
    upgrade_database(MIGRATIONS, database_url)
