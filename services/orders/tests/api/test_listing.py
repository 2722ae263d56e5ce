"""GET /orders: newest first, keyset pages that stay put while orders arrive."""

import base64

import pytest


async def _page(client, shop, sub="alice", **params):
    response = await client.get("/orders", params=params, headers=shop.headers(sub))
    assert response.status_code == 200, response.text
    return response.json()


async def _walk(client, shop, limit, between_pages=None, **params):
    seen: list[str] = []
    cursor = None
    while True:
        page = await _page(
            client,
            shop,
            limit=limit,
            **params,
            **({"cursor": cursor} if cursor else {}),
        )
        seen.extend(order["id"] for order in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if between_pages is not None:
            await between_pages()


async def test_orders_come_newest_first_in_pages(client, shop):
    created = [(await shop.create(sub="alice"))["id"] for _ in range(7)]

    first = await _page(client, shop, limit=3)
    walked = await _walk(client, shop, limit=3)

    assert [o["id"] for o in first["items"]] == created[::-1][:3]
    assert walked == created[::-1]


async def test_pages_are_stable_while_orders_are_created(client, shop):
    existing = [(await shop.create(sub="alice"))["id"] for _ in range(9)]
    arrived = []

    async def someone_orders() -> None:
        arrived.append((await shop.create(sub="alice"))["id"])

    walked = await _walk(client, shop, limit=2, between_pages=someone_orders)

    # Every order that existed is seen exactly once, in order; the new ones are
    # newer than the cursor and belong to a fresh first page.
    assert walked == existing[::-1]
    assert len(arrived) == 4
    fresh = await _page(client, shop, limit=4)
    assert [o["id"] for o in fresh["items"]] == arrived[::-1]


async def test_the_status_filter_pages_too(client, shop):
    ids = [(await shop.create(sub="alice"))["id"] for _ in range(5)]
    for order_id in ids[1::2]:
        cancelled = await client.post(
            f"/orders/{order_id}/cancel",
            headers=shop.headers("alice", **{"If-Match": '"1"'}),
        )
        assert cancelled.status_code == 200

    walked = await _walk(client, shop, limit=1, status="cancelled")
    pending = await _walk(client, shop, limit=2, status="pending")

    assert walked == [ids[3], ids[1]]
    assert pending == [ids[4], ids[2], ids[0]]


async def test_the_default_page_is_twenty(client, shop):
    for _ in range(21):
        await shop.create(sub="alice")

    page = await _page(client, shop)

    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"limit": 0}, "limit", "Input should be greater than or equal to 1"),
        ({"limit": 101}, "limit", "Input should be less than or equal to 100"),
        (
            {"limit": "ten"},
            "limit",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"status": "lost"},
            "status",
            "Input should be 'pending', 'confirmed', 'shipped', 'delivered' or 'cancelled'",
        ),
    ],
    ids=["limit-zero", "limit-huge", "limit-text", "status-unknown"],
)
async def test_bad_query_parameters_are_422s(client, shop, params, field, reason):
    response = await client.get("/orders", params=params, headers=shop.headers())

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": field, "in": "query", "reason": reason}
    ]


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        (
            "not-a-cursor!",
            "not a cursor this API issued; pass next_cursor from a page as is",
        ),
        (
            _encoded(b"[1, 2]"),
            "not a cursor this API issued; pass next_cursor from a page as is",
        ),
        (
            _encoded(b'["2026-01-01T00:00:00", "x"]'),
            "not a cursor this API issued; pass next_cursor from a page as is",
        ),
        (
            _encoded(b'{"a": 1}'),
            "not a cursor this API issued; pass next_cursor from a page as is",
        ),
        (
            _encoded(b"\xff\xfe"),
            "not a cursor this API issued; pass next_cursor from a page as is",
        ),
        ("A" * 201, "too long to be a cursor this API issued"),
    ],
    ids=["garbage", "numbers", "naive-time", "object", "not-utf8", "too-long"],
)
async def test_an_invalid_cursor_is_a_400_naming_it(client, shop, cursor, reason):
    response = await client.get(
        "/orders", params={"cursor": cursor}, headers=shop.headers()
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "cursor", "in": "query", "reason": reason}
    ]
