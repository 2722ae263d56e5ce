"""``python -m identity rotate-keys``: schedule the next signing key now.

The new key is published at once and signs after the publish-ahead delay, like
an automatic rotation, so verifiers that cache the JWKS never meet an unknown
``kid``. Safe to run while replicas serve, and on several machines at once.
"""

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from identity.app import key_store
from identity.settings import Settings
from servicekit.database import create_engine

logger = logging.getLogger(__name__)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


async def rotate_keys(settings: Settings) -> str:
    """Create the next key; a line saying what happened (no secret in it)."""
    engine = create_engine(settings.database_url)
    try:
        store = key_store(settings, async_sessionmaker(engine, expire_on_commit=False))
        await store.maintain()
        created = await store.rotate()
        if created is None:
            pending = max(store.keys, key=lambda key: key.generation)
            return f"a new key is already pending: {pending.kid} signs from {_when(pending.activates_at)}"
        return f"new signing key {created.kid} published; it signs from {_when(created.activates_at)}"
    finally:
        await engine.dispose()


def run_rotate_keys(settings: Settings) -> None:
    outcome = asyncio.run(rotate_keys(settings))
    logger.info("signing keys rotated", extra={"outcome": outcome})
    print(outcome)
