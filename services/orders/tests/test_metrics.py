"""orders' metrics, under the names the platform fixed."""

import asyncio
import time

from prometheus_client import REGISTRY

from tests.support.tokens import JwksServer


def _refreshes(outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "orders_jwks_refreshes_total", {"outcome": outcome}
    )
    return sample or 0.0


async def test_jwks_refreshes_are_counted_by_outcome(start_orders, rsa_key):
    jwks = JwksServer()
    jwks.failing = True
    jwks.start()
    failures, successes = _refreshes("failure"), _refreshes("success")
    try:
        async with start_orders(jwks.url) as client:
            failed = _refreshes("failure")
            jwks.failing = False
            jwks.publish(rsa_key)
            deadline = time.monotonic() + 15
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "the JWKS was never fetched"
                await asyncio.sleep(0.2)
    finally:
        jwks.stop()

    assert failed == failures + 1
    assert _refreshes("success") == successes + 1


def test_every_metric_name_is_registered():
    names = {metric.name for metric in REGISTRY.collect()}

    assert {
        "orders_created",
        "orders_status_transitions",
        "orders_jwks_refreshes",
    } <= names
    for to_status in ("confirmed", "shipped", "delivered", "cancelled"):
        assert (
            REGISTRY.get_sample_value(
                "orders_status_transitions_total", {"to_status": to_status}
            )
            is not None
        )
