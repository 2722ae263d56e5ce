"""``python -m identity purge``: delete the expired rows once, now.

The same purge the service runs every ``IDENTITY_PURGE_INTERVAL_SECONDS``
(:mod:`identity.storage.retention`), for a cron job when the interval is 0 or
after a large clean-up. Safe while replicas serve and purge themselves.
"""

from sqlalchemy.ext.asyncio import async_sessionmaker

from identity.settings import Settings
from identity.storage.retention import Retention
from identity.throttling import Throttle
from servicekit.database import create_engine
from servicekit.purging import purge_from_command_line


async def purge_expired(settings: Settings) -> dict[str, int]:
    """Run one purge against the configured database; the count per table."""
    engine = create_engine(settings.database_url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        throttle = Throttle(sessions, window_seconds=settings.throttle_window_seconds)
        return await Retention(sessions, throttle).purge()
    finally:
        await engine.dispose()


def run_purge(settings: Settings) -> None:
    purge_from_command_line(lambda: purge_expired(settings))
