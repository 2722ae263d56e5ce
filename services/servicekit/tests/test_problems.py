async def test_an_unknown_route_is_a_404_problem(client):
    response = await client.get("/nowhere", headers={"X-Request-ID": "p-1"})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "No resource at '/nowhere'.",
        "instance": "/nowhere",
        "request_id": "p-1",
    }


async def test_a_wrong_method_is_a_405_problem_with_allow(client):
    response = await client.delete("/widgets")

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "POST"
    assert response.json()["detail"] == "DELETE is not allowed on '/widgets'."


async def test_invalid_input_is_a_422_problem_naming_each_field(client):
    response = await client.post("/widgets", json={"name": "", "count": "many"})

    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "Invalid request"
    fields = {error["field"]: error["reason"] for error in body["errors"]}
    assert set(fields) == {"name", "count"}
    assert "at least 1 character" in fields["name"]
    assert "valid integer" in fields["count"]


async def test_malformed_json_is_a_422_problem(client):
    response = await client.post(
        "/widgets", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_raised_problem_keeps_its_type_and_status(client):
    response = await client.get("/teapot")

    assert response.status_code == 418
    assert response.json()["type"] == "https://example.test/teapot"
    assert response.json()["detail"] == "Short and stout."


async def test_an_unexpected_error_is_a_500_problem_without_internals(client):
    response = await client.get("/boom", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "boom-1"
    body = response.json()
    assert body["request_id"] == "boom-1"
    assert "secret internals" not in response.text
