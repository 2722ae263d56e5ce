"""POST /orders: idempotent creation, server-computed totals, strict input."""

import asyncio

import pytest
from prometheus_client import REGISTRY


def _created_count() -> float:
    return REGISTRY.get_sample_value("orders_created_total") or 0.0


async def _post(client, shop, body, key="key-1", sub="alice"):
    return await client.post(
        "/orders", json=body, headers=shop.headers(sub, **{"Idempotency-Key": key})
    )


async def test_an_order_is_created_with_its_total_computed(client, shop):
    before = _created_count()

    response = await _post(client, shop, shop.body())

    order = response.json()
    assert response.status_code == 201
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert response.headers["etag"] == '"1"'
    assert order["owner"] == "alice"
    assert order["status"] == "pending"
    assert order["version"] == 1
    assert [i["line_total_minor"] for i in order["items"]] == [2500, 199]
    assert order["total_minor"] == 2699
    assert order["created_at"] == order["updated_at"]
    assert order["created_at"].endswith("Z")
    assert _created_count() == before + 1


async def test_a_client_supplied_total_is_an_unknown_field(client, shop):
    response = await _post(client, shop, shop.body(total_minor=1))

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "total_minor",
            "in": "body",
            "reason": "Extra inputs are not permitted",
        }
    ]


async def test_the_same_key_and_body_replays_the_first_response(client, shop):
    first = await _post(client, shop, shop.body())
    before = _created_count()

    again = await _post(client, shop, shop.body())

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert _created_count() == before
    listed = await client.get("/orders", headers=shop.headers("alice"))
    assert len(listed.json()["items"]) == 1


async def test_the_same_body_with_members_reordered_is_the_same_request(client, shop):
    first = await _post(
        client, shop, {"currency": "EUR", "items": shop.body()["items"]}
    )
    reordered_items = [dict(reversed(list(i.items()))) for i in shop.body()["items"]]

    again = await _post(client, shop, {"items": reordered_items, "currency": "EUR"})

    assert again.json()["id"] == first.json()["id"]


async def test_the_same_key_with_another_body_is_refused(client, shop):
    first = await _post(client, shop, shop.body())

    other = await _post(client, shop, shop.body(currency="USD"))

    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["detail"] == (
        "The Idempotency-Key 'key-1' was used for a different request body; "
        "use a new key for a new order."
    )
    got = await client.get(first.headers["location"], headers=shop.headers("alice"))
    assert got.json()["currency"] == "EUR"


async def test_keys_belong_to_their_subject(client, shop):
    alices = await _post(client, shop, shop.body(), sub="alice")

    bobs = await _post(client, shop, shop.body(), sub="bob")

    assert bobs.status_code == 201
    assert bobs.json()["id"] != alices.json()["id"]
    assert bobs.json()["owner"] == "bob"


async def test_fifty_concurrent_creations_with_one_key_make_one_order(client, shop):
    before = _created_count()

    responses = await asyncio.gather(
        *(_post(client, shop, shop.body(), key="storm") for _ in range(50))
    )

    assert [r.status_code for r in responses] == [201] * 50
    assert len({r.json()["id"] for r in responses}) == 1
    replayed = [r for r in responses if "idempotent-replayed" in r.headers]
    assert len(replayed) == 49
    listed = await client.get("/orders", headers=shop.headers("alice"))
    assert len(listed.json()["items"]) == 1
    assert _created_count() == before + 1


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param(
            None,
            "required: send a unique value (a UUID) per order you create, "
            "and the same value when you retry",
            id="missing",
        ),
        pytest.param(
            "has space",
            "must be 1 to 255 visible ASCII characters without quotes inside",
            id="space",
        ),
        pytest.param(
            "k" * 256,
            "must be 1 to 255 visible ASCII characters without quotes inside",
            id="too-long",
        ),
        pytest.param(
            "",
            "must be 1 to 255 visible ASCII characters without quotes inside",
            id="empty",
        ),
    ],
)
async def test_an_invalid_idempotency_key_is_a_400(client, shop, header, reason):
    extra = {} if header is None else {"Idempotency-Key": header}

    response = await client.post(
        "/orders", json=shop.body(), headers=shop.headers("alice", **extra)
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "Idempotency-Key", "in": "header", "reason": reason}
    ]


async def test_a_quoted_structured_field_key_is_the_bare_key(client, shop):
    bare = await _post(client, shop, shop.body(), key="abc-1")

    quoted = await _post(client, shop, shop.body(), key='"abc-1"')

    assert quoted.json()["id"] == bare.json()["id"]


ITEM = {"sku": "BOOK-0451", "quantity": 1, "unit_price_minor": 100}


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        pytest.param(
            {"currency": "EUR", "items": [ITEM], "coupon": "x"},
            "coupon",
            "Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "colour": "red"}]},
            "items.0.colour",
            "Extra inputs are not permitted",
            id="unknown-item-field",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "quantity": "2"}]},
            "items.0.quantity",
            "Input should be a valid integer",
            id="quantity-string",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "quantity": 1.5}]},
            "items.0.quantity",
            "Input should be a valid integer",
            id="quantity-float",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "quantity": True}]},
            "items.0.quantity",
            "Input should be a valid integer",
            id="quantity-bool",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "quantity": 0}]},
            "items.0.quantity",
            "Input should be greater than 0",
            id="quantity-zero",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "quantity": -3}]},
            "items.0.quantity",
            "Input should be greater than 0",
            id="quantity-negative",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "quantity": 10**30}]},
            "items.0.quantity",
            "Input should be less than or equal to 10000",
            id="quantity-huge",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "unit_price_minor": -1}]},
            "items.0.unit_price_minor",
            "Input should be greater than or equal to 0",
            id="price-negative",
        ),
        pytest.param(
            {"currency": "EUR", "items": [{**ITEM, "sku": "no spaces"}]},
            "items.0.sku",
            "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'",
            id="sku-pattern",
        ),
        pytest.param(
            {"currency": "XYZ", "items": [ITEM]},
            "currency",
            "Value error, 'XYZ' is not an accepted ISO 4217 code; use one of AUD, "
            "BRL, CAD, CHF, CNY, CZK, DKK, EUR, GBP, HKD, HUF, INR, JPY, KRW, MXN, "
            "NOK, NZD, PLN, SEK, SGD, USD, ZAR",
            id="currency-unknown",
        ),
        pytest.param(
            {"currency": "eur", "items": [ITEM]},
            "currency",
            "Value error, 'eur' is not an accepted ISO 4217 code; use one of AUD, "
            "BRL, CAD, CHF, CNY, CZK, DKK, EUR, GBP, HKD, HUF, INR, JPY, KRW, MXN, "
            "NOK, NZD, PLN, SEK, SGD, USD, ZAR",
            id="currency-lowercase",
        ),
        pytest.param(
            {"currency": 978, "items": [ITEM]},
            "currency",
            "Input should be a valid string",
            id="currency-number",
        ),
        pytest.param(
            {"currency": "EUR", "items": []},
            "items",
            "List should have at least 1 item after validation, not 0",
            id="no-items",
        ),
        pytest.param(
            {"currency": "EUR", "items": [ITEM] * 101},
            "items",
            "List should have at most 100 items after validation, not 101",
            id="too-many-items",
        ),
        pytest.param(
            {"currency": "EUR"}, "items", "Field required", id="items-missing"
        ),
        pytest.param(
            {"currency": "EUR", "items": [ITEM, ITEM]},
            "items.1.sku",
            "SKU 'BOOK-0451' appears twice; add the quantities instead",
            id="duplicate-sku",
        ),
        pytest.param(
            {
                "currency": "EUR",
                "items": [
                    {"sku": f"S{i}", "quantity": 10_000, "unit_price_minor": 10**12}
                    for i in range(2)
                ],
            },
            "items",
            "the order's total exceeds 9007199254740991 minor units",
            id="total-overflow",
        ),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(client, shop, body, field, reason):
    response = await _post(client, shop, body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": field, "in": "body", "reason": reason}
    ]
    listed = await client.get("/orders", headers=shop.headers("alice"))
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'"a string"', b"null"],
    ids=["invalid-json", "array", "string", "null"],
)
async def test_a_body_that_is_not_an_order_object_is_a_422(client, shop, content):
    response = await client.post(
        "/orders",
        content=content,
        headers=shop.headers(
            "alice", **{"Idempotency-Key": "k", "Content-Type": "application/json"}
        ),
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["in"] == "body"
