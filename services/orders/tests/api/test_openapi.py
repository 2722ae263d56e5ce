"""The OpenAPI document describes every answer an operation can give."""

import pytest

from orders.api.schemas import OrderOut
from orders.app import create_app

EXPECTED_ERRORS = {
    ("post", "/orders"): {400, 401, 403, 413, 422, 503},
    ("get", "/orders"): {400, 401, 403, 422, 503},
    ("get", "/orders/{order_id}"): {400, 401, 403, 404, 503},
    ("patch", "/orders/{order_id}"): {400, 401, 403, 404, 409, 412, 413, 422, 428, 503},
    ("post", "/orders/{order_id}/cancel"): {400, 401, 403, 404, 409, 412, 428, 503},
    ("delete", "/orders/{order_id}"): {400, 401, 403, 404, 409, 412, 503},
}


@pytest.fixture
def document(settings):
    return create_app(settings).openapi()


def test_every_operation_lists_its_errors_as_problems(document):
    operations = {
        (method, path): operation
        for path, methods in document["paths"].items()
        if path.startswith("/orders")
        for method, operation in methods.items()
    }

    assert set(operations) == set(EXPECTED_ERRORS)
    for key, operation in operations.items():
        errors = {int(code) for code in operation["responses"] if code[0] in "45"}
        assert errors == EXPECTED_ERRORS[key], key
        for code in errors:
            content = operation["responses"][str(code)]["content"]
            assert content == {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/ProblemDocument"}
                }
            }, (key, code)
        assert operation["security"] == [{"bearer": []}]
        assert operation["summary"]


def test_success_responses_name_their_schemas(document):
    paths = document["paths"]

    created = paths["/orders"]["post"]["responses"]["201"]["content"]
    listed = paths["/orders"]["get"]["responses"]["200"]["content"]

    assert created["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderOut"
    }
    assert listed["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderPage"
    }
    assert "204" in paths["/orders/{order_id}"]["delete"]["responses"]


def test_the_problem_schema_and_bearer_scheme_are_components(document):
    components = document["components"]

    problem = components["schemas"]["ProblemDocument"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    assert "errors" in problem["properties"]
    assert "FieldError" in components["schemas"]
    assert components["securitySchemes"]["bearer"]["scheme"] == "bearer"
    currency = components["schemas"]["OrderCreate"]["properties"]["currency"]
    assert "EUR" in currency["enum"]


async def test_the_fast_serialiser_matches_the_documented_schema(shop, client):
    created = await shop.create()
    got = await client.get(f"/orders/{created['id']}", headers=shop.headers())

    assert OrderOut.model_validate(got.json()).id == created["id"]
    assert set(got.json()) == set(OrderOut.model_fields)
