"""The periodic purge in the service, its failures, and ``python -m identity purge``."""

import base64
import json

from sqlalchemy.ext.asyncio import async_sessionmaker

from identity.storage.database import MIGRATIONS
from identity.storage.grants import GrantStore
from identity.storage.retention import GRACE_SECONDS, Retention
from identity.throttling import Throttle
from servicekit.database import create_engine, upgrade_database_async
from servicekit.purging import PeriodicPurge
from tests.support.purging import REFUSING_HOST, failures_while_running


async def test_the_purge_command_deletes_expired_rows_and_prints_the_counts(
    run_identity, tmp_path
):
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    await upgrade_database_async(MIGRATIONS, url)
    engine = create_engine(url)
    store = GrantStore(async_sessionmaker(engine), reuse_grace=0.0)
    await store.start_session("user-1", lifetime=-GRACE_SECONDS - 60)
    await store.start_session("user-1", lifetime=3600)
    await engine.dispose()
    env = {
        "IDENTITY_DATABASE_URL": url,
        "IDENTITY_KEY_ENCRYPTION_KEY": base64.b64encode(b"q" * 32).decode(),
    }

    first = run_identity("purge", env=env)
    second = run_identity("purge", env=env)

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.strip().splitlines()[-1]) == {
        "access_tokens": 0,
        "authorization_codes": 0,
        "browser_sessions": 1,
        "grants": 0,
        "refresh_tokens": 0,
        "throttles": 0,
    }
    assert json.loads(second.stdout.strip().splitlines()[-1])["browser_sessions"] == 0


async def test_a_database_failure_is_logged_and_the_next_interval_tries_again(caplog):
    engine = create_engine(f"postgresql://identity@{REFUSING_HOST}/identity")
    sessions = async_sessionmaker(engine)
    retention = Retention(sessions, Throttle(sessions, window_seconds=900))
    try:
        failures, running = await failures_while_running(
            PeriodicPurge(retention.purge, interval=0.05), caplog
        )
    finally:
        await engine.dispose()

    assert len(failures) >= 2
    assert running
    assert failures[0].error.startswith("ConnectionRefusedError: ")  # type: ignore[attr-defined]


async def test_an_interval_of_zero_disables_the_periodic_purge():
    async def never() -> dict[str, int]:
        raise AssertionError("the purge ran although it is disabled")

    purge = PeriodicPurge(never, interval=0)
    purge.start()

    assert not purge.running
    await purge.stop()
