"""Watching a service's periodic purge fail against a database that refuses."""

import asyncio
import logging

import pytest

from servicekit.purging import PeriodicPurge

# Nothing listens on port 1: every connection attempt is refused.
REFUSING_HOST = "127.0.0.1:1"


async def failures_while_running(
    purge: PeriodicPurge, caplog: pytest.LogCaptureFixture, *, at_least: int = 2
) -> tuple[list[logging.LogRecord], bool]:
    """Run ``purge`` until it has failed ``at_least`` times (20 s at most).

    Returns the WARNING records of the failed purges and whether the purge was
    still running after them.
    """
    caplog.set_level(logging.INFO, logger="servicekit.purging")
    purge.start()
    try:
        for _ in range(400):
            if len(_failures(caplog)) >= at_least:
                break
            await asyncio.sleep(0.05)
        running = purge.running
    finally:
        await purge.stop()
    return _failures(caplog), running


def _failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.getMessage() == "purge failed" and record.levelno == logging.WARNING
    ]
