"""Request bodies are bounded: 413 before anything is parsed or stored."""


async def test_a_body_over_the_limit_is_413(client, shop):
    body = shop.body(items=[{"sku": "X" * 60, "quantity": 1, "unit_price_minor": 1}])
    padded = {**body, "padding": "x" * 70_000}

    response = await client.post(
        "/orders",
        json=padded,
        headers=shop.headers("alice", **{"Idempotency-Key": "big"}),
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The request body is larger than 65536 bytes."
    listed = await client.get("/orders", headers=shop.headers("alice"))
    assert listed.json()["items"] == []


async def test_a_streamed_body_without_length_is_bounded_too(client, shop):
    async def chunks():
        for _ in range(100):
            yield b"x" * 1024

    response = await client.post(
        "/orders",
        content=chunks(),
        headers=shop.headers(
            "alice", **{"Idempotency-Key": "stream", "Content-Type": "application/json"}
        ),
    )

    assert response.status_code == 413
    assert response.json()["max_bytes"] == 65536


async def test_a_body_under_the_limit_passes(client, shop):
    response = await client.post(
        "/orders",
        json=shop.body(),
        headers=shop.headers("alice", **{"Idempotency-Key": "small"}),
    )

    assert response.status_code == 201
