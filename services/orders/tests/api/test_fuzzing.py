"""Mutated bodies and headers never get a 500 and never leave half an order."""

import json
import random
from typing import Any

import pytest

_ODD_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**63,
    10**400,
    1.5,
    float("1e308"),
    "",
    "\u0000",
    "é" * 300,
    "EUR",
    [],
    {},
    [1, 2],
    {"sku": "A"},
]


def _mutate(body: dict[str, Any], rng: random.Random) -> Any:
    choice = rng.randrange(6)
    mutated = json.loads(json.dumps(body))
    if choice == 0:
        mutated[rng.choice(["currency", "items", "extra"])] = rng.choice(_ODD_VALUES)
    elif choice == 1:
        item = rng.choice(mutated["items"])
        item[rng.choice(["sku", "quantity", "unit_price_minor", "x"])] = rng.choice(
            _ODD_VALUES
        )
    elif choice == 2:
        del mutated[rng.choice(["currency", "items"])]
    elif choice == 3:
        mutated["items"] = [rng.choice(_ODD_VALUES) for _ in range(rng.randrange(4))]
    elif choice == 4:
        return rng.choice(_ODD_VALUES)
    else:
        item = rng.choice(mutated["items"])
        item["quantity"] = rng.choice([10_000, 9_999])
        item["unit_price_minor"] = rng.choice([10**12, 10**12 - 1])
    return mutated


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_mutated_creations_are_4xx_problems_or_whole_orders(client, shop):
    rng = random.Random(4)  # fixed: a failure reproduces
    created = 0

    for case in range(150):
        body = _mutate(shop.body(), rng)
        response = await client.post(
            "/orders",
            content=json.dumps(body, allow_nan=True),
            headers=shop.headers(
                "alice",
                **{
                    "Idempotency-Key": f"fuzz-{case}",
                    "Content-Type": "application/json",
                },
            ),
        )

        assert response.status_code in (201, 422), (body, response.text)
        if response.status_code == 201:
            created += 1
            assert response.json()["total_minor"] == sum(
                i["quantity"] * i["unit_price_minor"] for i in body["items"]
            )
        else:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["errors"], response.text

    assert 0 < created < 150
    listed = await client.get(
        "/orders", params={"limit": 100}, headers=shop.headers("alice")
    )
    assert len(listed.json()["items"]) == min(created, 100)
