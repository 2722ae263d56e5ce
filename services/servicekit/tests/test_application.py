"""add_routes and RequestRoute: the routes services copy onto their app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from servicekit.application import RequestRoute, add_routes, service_app
from servicekit.problems import Problem


@asynccontextmanager
async def _no_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


def _app() -> FastAPI:
    return service_app(
        title="test", version="0", description="", lifespan=_no_lifespan, readiness={}
    )


def _routers() -> tuple[APIRouter, APIRouter]:
    items = APIRouter(prefix="/items", tags=["items"])

    @items.get("/{item_id}", responses={404: {"description": "No such item"}})
    async def item(item_id: int) -> dict[str, int]:
        """One item."""
        if item_id == 0:
            raise Problem(404, "No item 0.")
        return {"id": item_id}

    forms = APIRouter(tags=["forms"])

    async def echo(request: Request) -> Response:
        """Echo the form."""
        form = await request.body()
        if not form:
            raise Problem(400, "The form is empty.")
        return JSONResponse({"form": form.decode()})

    forms.add_api_route(
        "/echo", echo, methods=["POST"], route_class_override=RequestRoute
    )
    return items, forms


def _paths(app: FastAPI) -> list[str]:
    return [getattr(route, "path", "") for route in app.router.routes]


def test_copied_routes_go_first_in_the_order_given():
    app = _app()
    builtin = _paths(app)

    add_routes(app, *_routers())

    assert _paths(app) == ["/items/{item_id}", "/echo", *builtin]


def test_the_openapi_document_is_the_one_include_router_gives():
    copied, included = _app(), _app()
    add_routes(copied, *_routers())
    for router in _routers():
        included.include_router(router)

    document: dict[str, Any] = copied.openapi()
    assert document["paths"] == included.openapi()["paths"]
    assert document["paths"]["/echo"]["post"]["description"] == "Echo the form."
    assert "404" in document["paths"]["/items/{item_id}"]["get"]["responses"]


async def test_copied_and_request_routes_answer_with_the_app_handlers():
    app = _app()
    add_routes(app, *_routers())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/7")).json() == {"id": 7}
        invalid = await client.get("/items/seven")
        missing = await client.get("/items/0")
        echoed = await client.post("/echo", content=b"a=1")
        empty = await client.post("/echo", headers={"X-Request-ID": "r-1"})
        wrong_method = await client.get("/echo")

    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "item_id"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert echoed.json() == {"form": "a=1"}
    assert echoed.headers["x-request-id"]
    assert empty.status_code == 400
    assert empty.json()["detail"] == "The form is empty."
    assert empty.json()["request_id"] == "r-1"
    assert wrong_method.status_code == 405


def test_a_request_route_endpoint_takes_only_the_request():
    router = APIRouter()

    async def by_id(item_id: int) -> Response:
        return Response()

    with pytest.raises(TypeError, match="exactly one parameter, the Request"):
        router.add_api_route("/x/{item_id}", by_id, route_class_override=RequestRoute)


def test_a_router_holding_another_router_is_refused():
    outer, inner = APIRouter(), APIRouter()

    @inner.get("/x")
    async def x() -> None:
        return None

    outer.include_router(inner)

    with pytest.raises(TypeError, match="is not a path operation"):
        add_routes(_app(), outer)
