"""``python -m orders purge``: delete the expired idempotency keys once, now.

The purge the service runs every ``ORDERS_PURGE_INTERVAL_SECONDS``, for a
cron job when the interval is 0 (replicas then keep expired keys, which are
still treated as unseen) or after a long outage. Safe while replicas serve.
"""

from datetime import timedelta

from orders.settings import Settings
from orders.storage.orders import OrderStore
from orders.storage.reads import order_reader
from servicekit.database import create_engine
from servicekit.purging import purge_from_command_line


async def purge_expired(settings: Settings) -> dict[str, int]:
    """Run one purge against the configured database; the count per table."""
    engine = create_engine(settings.database_url)
    try:
        store = OrderStore(
            engine,
            order_reader(settings.database_url),
            idempotency_key_ttl=timedelta(seconds=settings.idempotency_key_ttl_seconds),
        )
        return await store.purge_idempotency_keys()
    finally:
        await engine.dispose()


def run_purge(settings: Settings) -> None:
    purge_from_command_line(lambda: purge_expired(settings))
