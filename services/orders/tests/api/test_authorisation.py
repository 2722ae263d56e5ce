"""Scopes decide what a caller may do; ownership decides on which orders."""

import httpx
import pytest

READ = "orders:read"
WRITE = "orders:write"
ADMIN = "orders:admin"


@pytest.mark.parametrize(
    ("scope", "method", "path", "status"),
    [
        pytest.param(READ, "GET", "/orders/{id}", 200, id="read-get"),
        pytest.param(READ, "GET", "/orders", 200, id="read-list"),
        pytest.param(READ, "POST", "/orders/{id}/cancel", 403, id="read-cancel"),
        pytest.param(READ, "DELETE", "/orders/{id}", 403, id="read-delete"),
        pytest.param(WRITE, "GET", "/orders/{id}", 403, id="write-get"),
        pytest.param(WRITE, "POST", "/orders/{id}/cancel", 200, id="write-cancel"),
        pytest.param(WRITE, "DELETE", "/orders/{id}", 204, id="write-delete"),
        pytest.param(ADMIN, "GET", "/orders/{id}", 200, id="admin-get"),
        pytest.param(ADMIN, "POST", "/orders/{id}/cancel", 200, id="admin-cancel"),
        pytest.param("openid", "GET", "/orders/{id}", 403, id="other-get"),
    ],
)
async def test_scopes_on_ones_own_order(shop, client, scope, method, path, status):
    order = await shop.create(sub="alice")

    response = await client.request(
        method,
        path.format(id=order["id"]),
        headers=shop.headers("alice", scope, **{"If-Match": '"1"'}),
    )

    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"] == "insufficient_scope"


async def test_creating_needs_orders_write(shop, client):
    response = await client.post(
        "/orders",
        json=shop.body(),
        headers=shop.headers("alice", READ, **{"Idempotency-Key": "k1"}),
    )

    assert response.status_code == 403
    assert response.json()["scope"] == WRITE


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/orders/{id}"),
        ("PATCH", "/orders/{id}"),
        ("POST", "/orders/{id}/cancel"),
        ("DELETE", "/orders/{id}"),
    ],
)
async def test_another_users_order_is_not_found(shop, client, method, path):
    order = await shop.create(sub="alice")

    response = await client.request(
        method,
        path.format(id=order["id"]),
        headers=shop.headers("mallory", f"{READ} {WRITE}", **{"If-Match": '"1"'}),
        json={"status": "cancelled"} if method == "PATCH" else None,
    )

    assert response.status_code == 404
    assert response.json()["detail"] == f"No order {order['id']!r}."
    still = await client.get(f"/orders/{order['id']}", headers=shop.headers("alice"))
    assert still.json()["status"] == "pending"


async def test_a_missing_order_looks_the_same_as_anothers(shop, client):
    response = await client.get("/orders/no-such-id", headers=shop.headers("alice"))

    assert response.status_code == 404
    assert response.json()["detail"] == "No order 'no-such-id'."


async def test_listing_shows_only_the_callers_orders(shop, client):
    mine = await shop.create(sub="alice")
    await shop.create(sub="bob")

    listed = await client.get("/orders", headers=shop.headers("alice"))

    assert [o["id"] for o in listed.json()["items"]] == [mine["id"]]


async def test_listing_another_subjects_orders_needs_admin(shop, client):
    await shop.create(sub="bob")

    response = await client.get(
        "/orders", params={"owner": "bob"}, headers=shop.headers("alice")
    )

    assert response.status_code == 403
    assert response.json()["scope"] == ADMIN


async def test_a_client_credentials_admin_token_sees_and_changes_every_order(
    shop, client, mint
):
    alices = await shop.create(sub="alice")
    bobs = await shop.create(sub="bob")
    # client_credentials: the subject is the client itself (RFC 9068 section 2.2).
    back_office = {
        "Authorization": "Bearer "
        + mint(sub="back-office", scope=ADMIN, client_id="back-office")
    }

    listed = await client.get("/orders", headers=back_office)
    only_bob = await client.get("/orders", params={"owner": "bob"}, headers=back_office)
    shipped: list[httpx.Response] = []
    for status in ("confirmed", "shipped"):
        shipped.append(
            await client.patch(
                f"/orders/{bobs['id']}",
                json={"status": status},
                headers={**back_office, "If-Match": f'"{len(shipped) + 1}"'},
            )
        )

    assert {o["id"] for o in listed.json()["items"]} == {alices["id"], bobs["id"]}
    assert [o["id"] for o in only_bob.json()["items"]] == [bobs["id"]]
    assert [r.status_code for r in shipped] == [200, 200]
    assert shipped[-1].json()["status"] == "shipped"
    assert shipped[-1].json()["owner"] == "bob"


async def test_an_admin_creates_orders_it_owns(client, shop, mint):
    response = await client.post(
        "/orders",
        json=shop.body(),
        headers={
            "Authorization": "Bearer " + mint(sub="back-office", scope=ADMIN),
            "Idempotency-Key": "bo-1",
        },
    )

    assert response.status_code == 201
    assert response.json()["owner"] == "back-office"


async def test_owners_cannot_mark_their_own_order_shipped(shop, client):
    order = await shop.create(sub="alice")
    confirmed = await client.patch(
        f"/orders/{order['id']}",
        json={"status": "confirmed"},
        headers=shop.headers("alice", **{"If-Match": '"1"'}),
    )

    shipped = await client.patch(
        f"/orders/{order['id']}",
        json={"status": "shipped"},
        headers=shop.headers("alice", **{"If-Match": '"2"'}),
    )

    assert confirmed.status_code == 200
    assert shipped.status_code == 403
    assert shipped.json()["detail"] == (
        "Only back office (scope 'orders:admin') marks an order 'shipped'."
    )
    assert shipped.headers["www-authenticate"].endswith('scope="orders:admin"')
