"""An Idempotency-Key replays for its retention, then counts as unseen."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from orders.storage.models import IdempotencyKeyRow
from servicekit.database import create_engine

TTL = timedelta(seconds=86_400)


def _created_count() -> float:
    return REGISTRY.get_sample_value("orders_created_total") or 0.0


async def _post(client, shop, body, key="key-1", sub="alice"):
    return await client.post(
        "/orders", json=body, headers=shop.headers(sub, **{"Idempotency-Key": key})
    )


async def _age_key(database_url, age, key="key-1"):
    """Make ``key`` look as if it was first used ``age`` ago."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(IdempotencyKeyRow)
                .where(IdempotencyKeyRow.key == key)
                .values(created_at=datetime.now(UTC) - age)
            )
    finally:
        await engine.dispose()


async def _stored_keys(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(select(func.count(IdempotencyKeyRow.key)))
    finally:
        await engine.dispose()


async def test_an_expired_key_creates_a_new_order(client, shop, settings):
    first = await _post(client, shop, shop.body())
    await _age_key(settings.database_url, TTL + timedelta(seconds=1))
    before = _created_count()

    second = await _post(client, shop, shop.body())
    third = await _post(client, shop, shop.body())

    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert _created_count() == before + 1
    # The key now stands for the new order.
    assert third.headers["idempotent-replayed"] == "true"
    assert third.json()["id"] == second.json()["id"]
    listed = await client.get("/orders", headers=shop.headers("alice"))
    assert len(listed.json()["items"]) == 2


async def test_an_expired_key_with_another_body_is_not_a_conflict(
    client, shop, settings
):
    await _post(client, shop, shop.body())
    await _age_key(settings.database_url, TTL + timedelta(seconds=1))

    other = await _post(client, shop, shop.body(currency="USD"))

    assert other.status_code == 201
    assert other.json()["currency"] == "USD"


async def test_a_key_within_its_retention_still_replays(client, shop, settings):
    first = await _post(client, shop, shop.body())
    await _age_key(settings.database_url, TTL - timedelta(minutes=1))

    again = await _post(client, shop, shop.body())

    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_fifty_concurrent_creations_with_an_expired_key_make_one_new_order(
    client, shop, settings
):
    first = await _post(client, shop, shop.body(), key="storm")
    await _age_key(settings.database_url, TTL + timedelta(seconds=1), key="storm")
    before = _created_count()

    responses = await asyncio.gather(
        *(_post(client, shop, shop.body(), key="storm") for _ in range(50))
    )

    assert [r.status_code for r in responses] == [201] * 50
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert ids != {first.json()["id"]}
    replayed = [r for r in responses if "idempotent-replayed" in r.headers]
    assert len(replayed) == 49
    assert _created_count() == before + 1


@pytest.mark.parametrize("overrides", [{"purge_interval_seconds": 0.2}])
async def test_the_service_purges_expired_keys(
    shop, settings, start_orders, jwks_server, overrides, caplog
):
    caplog.set_level(logging.INFO, logger="servicekit.purging")
    async with start_orders(jwks_server.url, **overrides) as client:
        await _post(client, shop, shop.body(), key="old")
        await _post(client, shop, shop.body(), key="new")
        await _age_key(settings.database_url, TTL + timedelta(seconds=1), key="old")

        purged = await _wait_for_a_purge(caplog)

    assert purged == {"idempotency_keys": 1}
    assert await _stored_keys(settings.database_url) == 1


async def _wait_for_a_purge(caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    """The counts of the first logged purge that deleted something."""
    for _ in range(400):  # 20 s at most
        for record in caplog.records:
            deleted: dict[str, int] = getattr(record, "deleted", {})
            if record.getMessage() == "expired rows purged" and any(deleted.values()):
                return deleted
        await asyncio.sleep(0.05)
    raise AssertionError("no purge deleted the expired key within 20 s")
