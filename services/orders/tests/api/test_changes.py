"""PATCH, cancel and DELETE: If-Match against the version, allowed transitions."""

import asyncio

import pytest
from prometheus_client import REGISTRY


def _transitions(to_status: str) -> float:
    sample = REGISTRY.get_sample_value(
        "orders_status_transitions_total", {"to_status": to_status}
    )
    return sample or 0.0


@pytest.fixture
async def order(shop):
    return await shop.create(sub="alice")


def _match(etag: str = '"1"', **more: str) -> dict[str, str]:
    return {"If-Match": etag, **more}


async def test_patching_items_recomputes_the_total_and_bumps_the_version(
    client, shop, order
):
    response = await client.patch(
        f"/orders/{order['id']}",
        json={"items": [{"sku": "MUG-1", "quantity": 3, "unit_price_minor": 800}]},
        headers=shop.headers("alice", **_match()),
    )

    changed = response.json()
    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    assert changed["version"] == 2
    assert changed["total_minor"] == 2400
    assert changed["updated_at"] > changed["created_at"]
    got = await client.get(f"/orders/{order['id']}", headers=shop.headers("alice"))
    assert got.json() == changed
    assert got.headers["etag"] == '"2"'


async def test_a_change_without_if_match_is_428(client, shop, order):
    patched = await client.patch(
        f"/orders/{order['id']}",
        json={"currency": "USD"},
        headers=shop.headers("alice"),
    )
    cancelled = await client.post(
        f"/orders/{order['id']}/cancel", headers=shop.headers("alice")
    )

    for response in (patched, cancelled):
        assert response.status_code == 428
        assert response.json()["detail"] == (
            "This change needs If-Match with the order's ETag; "
            f"GET /orders/{order['id']} returns it."
        )


@pytest.mark.parametrize("etag", ['"7"', 'W/"1"', '"2", "3"'])
async def test_a_stale_or_weak_etag_is_412_with_the_current_one(
    client, shop, order, etag
):
    response = await client.patch(
        f"/orders/{order['id']}",
        json={"currency": "USD"},
        headers=shop.headers("alice", **_match(etag)),
    )

    assert response.status_code == 412
    assert response.headers["etag"] == '"1"'
    assert response.json()["detail"] == (
        f"The order changed since: it is at version 1, If-Match gave {etag}. "
        "Fetch it again and retry."
    )
    got = await client.get(f"/orders/{order['id']}", headers=shop.headers("alice"))
    assert got.json()["currency"] == "EUR"


@pytest.mark.parametrize("etag", ['"1"', '"0", "1"', "*"])
async def test_a_matching_etag_in_a_list_or_a_star_passes(client, shop, order, etag):
    response = await client.patch(
        f"/orders/{order['id']}",
        json={"currency": "USD"},
        headers=shop.headers("alice", **_match(etag)),
    )

    assert response.status_code == 200
    assert response.json()["currency"] == "USD"


async def test_a_malformed_if_match_is_a_400(client, shop, order):
    response = await client.patch(
        f"/orders/{order['id']}",
        json={"currency": "USD"},
        headers=shop.headers("alice", **_match("1")),
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "If-Match",
            "in": "header",
            "reason": "'1' is not a list of entity tags; send the ETag as received, "
            'e.g. If-Match: "3"',
        }
    ]


async def test_of_two_concurrent_changes_with_one_etag_one_wins(client, shop, order):
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/orders/{order['id']}",
                json={"currency": currency},
                headers=shop.headers("alice", **_match()),
            )
            for currency in ("USD", "GBP", "CHF", "JPY")
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 412, 412, 412]
    winner = next(r for r in responses if r.status_code == 200).json()
    got = await client.get(f"/orders/{order['id']}", headers=shop.headers("alice"))
    assert got.json()["currency"] == winner["currency"]
    assert got.json()["version"] == 2


async def test_the_lifecycle_runs_through_its_allowed_transitions(
    client, shop, order, mint
):
    admin = {"Authorization": "Bearer " + mint(sub="ops", scope="orders:admin")}
    before = {s: _transitions(s) for s in ("confirmed", "shipped", "delivered")}
    statuses = []
    for version, status in enumerate(("confirmed", "shipped", "delivered"), start=1):
        response = await client.patch(
            f"/orders/{order['id']}",
            json={"status": status},
            headers={**admin, **_match(f'"{version}"')},
        )
        statuses.append((response.status_code, response.json()["status"]))

    assert statuses == [(200, "confirmed"), (200, "shipped"), (200, "delivered")]
    for status, count in before.items():
        assert _transitions(status) == count + 1


@pytest.mark.parametrize(
    ("path", "to", "detail"),
    [
        (
            ["confirmed"],
            "pending",
            "An order that is 'confirmed' cannot become 'pending'; allowed: "
            "shipped, cancelled.",
        ),
        (
            [],
            "delivered",
            "An order that is 'pending' cannot become 'delivered'; allowed: "
            "confirmed, cancelled.",
        ),
        (
            ["confirmed", "shipped"],
            "cancelled",
            "An order that is 'shipped' cannot become 'cancelled'; allowed: delivered.",
        ),
        (
            ["cancelled"],
            "confirmed",
            "An order that is 'cancelled' cannot become 'confirmed'; allowed: "
            "none: it is final.",
        ),
    ],
    ids=["backwards", "skipping", "cancel-shipped", "from-final"],
)
async def test_an_invalid_transition_is_a_409(
    client, shop, order, mint, path, to, detail
):
    admin = {"Authorization": "Bearer " + mint(sub="ops", scope="orders:admin")}
    version = 1
    for status in path:
        moved = await client.patch(
            f"/orders/{order['id']}",
            json={"status": status},
            headers={**admin, **_match(f'"{version}"')},
        )
        assert moved.status_code == 200
        version += 1

    response = await client.patch(
        f"/orders/{order['id']}",
        json={"status": to},
        headers={**admin, **_match(f'"{version}"')},
    )

    assert response.status_code == 409
    assert response.json()["detail"] == detail
    got = await client.get(f"/orders/{order['id']}", headers=admin)
    assert got.json()["version"] == version


async def test_items_cannot_change_once_confirmed(client, shop, order):
    await client.patch(
        f"/orders/{order['id']}",
        json={"status": "confirmed"},
        headers=shop.headers("alice", **_match()),
    )

    response = await client.patch(
        f"/orders/{order['id']}",
        json={"currency": "USD"},
        headers=shop.headers("alice", **_match('"2"')),
    )

    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Only a pending order's items and currency can change; this one is 'confirmed'."
    )


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({}, "body", "name at least one of items, currency, status"),
        (
            {"status": "lost"},
            "status",
            "Input should be 'pending', 'confirmed', 'shipped', 'delivered' or 'cancelled'",
        ),
        ({"version": 9}, "version", "Extra inputs are not permitted"),
        (
            {"items": []},
            "items",
            "List should have at least 1 item after validation, not 0",
        ),
        (
            {"currency": "ABC"},
            "currency",
            "Value error, 'ABC' is not an accepted ISO 4217 code; use one of AUD, BRL, CAD, CHF, CNY, CZK, DKK, EUR, GBP, HKD, HUF, INR, JPY, KRW, MXN, NOK, NZD, PLN, SEK, SGD, USD, ZAR",
        ),
        (
            {"items": [{"sku": "A", "quantity": -1, "unit_price_minor": 1}]},
            "items.0.quantity",
            "Input should be greater than 0",
        ),
    ],
    ids=[
        "empty",
        "unknown-status",
        "unknown-field",
        "no-items",
        "currency",
        "quantity",
    ],
)
async def test_a_bad_patch_is_a_422_and_changes_nothing(
    client, shop, order, body, field, reason
):
    response = await client.patch(
        f"/orders/{order['id']}", json=body, headers=shop.headers("alice", **_match())
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": field, "in": "body", "reason": reason}
    ]
    got = await client.get(f"/orders/{order['id']}", headers=shop.headers("alice"))
    assert got.json() == order


async def test_cancel_moves_a_pending_order_to_cancelled(client, shop, order):
    before = _transitions("cancelled")

    response = await client.post(
        f"/orders/{order['id']}/cancel", headers=shop.headers("alice", **_match())
    )
    again = await client.post(
        f"/orders/{order['id']}/cancel", headers=shop.headers("alice", **_match('"2"'))
    )

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.headers["etag"] == '"2"'
    assert _transitions("cancelled") == before + 1
    assert again.status_code == 409


async def test_a_pending_order_can_be_deleted(client, shop, order):
    deleted = await client.delete(
        f"/orders/{order['id']}", headers=shop.headers("alice")
    )
    after = await client.get(f"/orders/{order['id']}", headers=shop.headers("alice"))

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert after.status_code == 404


async def test_delete_checks_if_match_when_sent(client, shop, order):
    response = await client.delete(
        f"/orders/{order['id']}", headers=shop.headers("alice", **_match('"5"'))
    )

    assert response.status_code == 412


async def test_only_a_pending_order_can_be_deleted(client, shop, order):
    await client.patch(
        f"/orders/{order['id']}",
        json={"status": "confirmed"},
        headers=shop.headers("alice", **_match()),
    )

    response = await client.delete(
        f"/orders/{order['id']}", headers=shop.headers("alice")
    )

    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Only a pending order can be deleted; this one is 'confirmed'. "
        "Cancel it instead."
    )
