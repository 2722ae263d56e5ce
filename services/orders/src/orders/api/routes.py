"""The orders API: thin handlers over the domain rules and the store."""

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from orders import metrics
from orders.api.errors import problem_responses
from orders.api.preconditions import check_if_match, fingerprint, idempotency_key
from orders.api.schemas import (
    OrderCreate,
    OrderOut,
    OrderPage,
    OrderPatch,
    order_document,
    page_document,
)
from orders.api.security import Reader, Writer, reader
from orders.domain.access import ADMIN, Caller
from orders.domain.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    NeedsAdministrator,
    OrderNotFound,
    PreconditionFailed,
)
from orders.domain.listing import DEFAULT_LIMIT, MAX_LIMIT, Cursor
from orders.domain.orders import (
    Order,
    Status,
    ensure_deletable,
    new_order,
    revise,
    transition,
)
from orders.storage.orders import IdempotencyClaim, OrderStore
from servicekit.application import RequestRoute

JSON = "application/json"
_AUTH = (400, 401, 403, 503)
_BODY = (413, 422)


def _store(request: Request) -> OrderStore:
    store: OrderStore = request.app.state.store
    return store


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The order's ETag, as GET returned it; `*` for any version.",
    ),
]

router = APIRouter(prefix="/orders", tags=["orders"])


def _now() -> datetime:
    return datetime.now(UTC)


def _order_response(order: Order, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(order_document(order)),
        status_code=status_code,
        media_type=JSON,
        headers={"ETag": order.etag},
    )


async def _visible(store: OrderStore, caller: Caller, order_id: str) -> Order:
    order = await store.get(order_id)
    if order is None or not caller.sees(order):
        raise OrderNotFound(order_id)
    return order


async def _save(store: OrderStore, before: Order, after: Order) -> Response:
    if not await store.replace(after, expected_version=before.version):
        # Someone else changed or deleted it between our read and our write.
        current = await store.get(before.id)
        if current is None:
            raise OrderNotFound(before.id)
        raise PreconditionFailed(
            f"The order changed while this request ran; it is at version "
            f"{current.version}. Fetch it again and retry.",
            current_etag=current.etag,
        )
    if after.status is not before.status:
        metrics.STATUS_TRANSITIONS.labels(to_status=after.status.value).inc()
    return _order_response(after)


# What FastAPI would write for an ``order_id: str`` parameter; the hot read
# takes it from the path itself, which spares FastAPI's parameter solving.
_ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Order Id"},
}


async def get_order(request: Request) -> Response:
    """One order, with its ETag."""
    order_id: str = request.path_params["order_id"]
    # Authenticated here rather than through a dependency: FastAPI solves a
    # sub-dependency with a second pass over its parameters, about a third of
    # this request's time. The path parameter has no rules, so nothing can be
    # refused before authentication, as with the dependency.
    caller = await reader(request)
    store = _store(request)
    return _order_response(await _visible(store, caller, order_id))


# First: the most frequent request is matched against fewer routes. Served as
# a RequestRoute: nothing of FastAPI's parameter solving is left to do for it.
router.add_api_route(
    "/{order_id}",
    get_order,
    methods=["GET"],
    response_model=OrderOut,
    responses=problem_responses(*_AUTH, 404),
    openapi_extra={"parameters": [_ORDER_ID]},
    route_class_override=RequestRoute,
)


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    responses=problem_responses(*_AUTH, *_BODY),
)
async def create_order(
    body: OrderCreate,
    caller: Writer,
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Unique per order; a retry with the same key and body "
            "gets the first response, with another body a 422.",
        ),
    ] = None,
) -> Response:
    """Create an order for the caller."""
    store = _store(request)
    claimed_key = idempotency_key(key)
    now = _now()
    order = new_order(
        owner=caller.subject,
        currency=body.currency,
        items=[item.to_item() for item in body.items],
        now=now,
    )
    document = orjson.dumps(order_document(order))
    claim = IdempotencyClaim(
        owner=caller.subject,
        key=claimed_key,
        fingerprint=fingerprint(body),
        response=document.decode(),
        created_at=now,
    )

    first = await store.create(order, claim)
    if first is None:
        metrics.ORDERS_CREATED.inc()
        return Response(
            document,
            status_code=201,
            media_type=JSON,
            headers={"ETag": order.etag, "Location": f"/orders/{order.id}"},
        )
    if first.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(
            f"The Idempotency-Key {claimed_key!r} was used for a different "
            "request body; use a new key for a new order."
        )
    return Response(
        first.response.encode(),
        status_code=201,
        media_type=JSON,
        headers={
            "Location": f"/orders/{first.order_id}",
            "Idempotent-Replayed": "true",
        },
    )


@router.get(
    "",
    response_model=OrderPage,
    responses=problem_responses(*_AUTH, 422),
)
async def list_orders(
    caller: Reader,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
    status: Annotated[Status | None, Query()] = None,
    owner: Annotated[
        str | None, Query(description="Back office only: one subject's orders.")
    ] = None,
) -> Response:
    """The caller's orders, newest first (back office: everyone's)."""
    store = _store(request)
    after = None if cursor is None else Cursor.decode(cursor)
    if owner is not None and not caller.administrator and owner != caller.subject:
        raise NeedsAdministrator(
            "Only back office (scope 'orders:admin') lists another subject's orders.",
            scope=ADMIN,
        )
    visible_owner = owner if caller.administrator else caller.subject
    orders = await store.page(
        owner=visible_owner, status=status, after=after, limit=limit + 1
    )
    return Response(orjson.dumps(page_document(orders, limit)), media_type=JSON)


@router.patch(
    "/{order_id}",
    response_model=OrderOut,
    responses=problem_responses(*_AUTH, 404, 409, 412, *_BODY, 428),
)
async def update_order(
    order_id: str,
    body: OrderPatch,
    caller: Writer,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Change a pending order's items or currency, or move its status on."""
    store = _store(request)
    if body.items is None and body.currency is None and body.status is None:
        raise InvalidInput("body", "name at least one of items, currency, status")
    order = await _visible(store, caller, order_id)
    check_if_match(if_match, order)

    now = _now()
    changed = revise(
        order,
        items=None if body.items is None else [i.to_item() for i in body.items],
        currency=body.currency,
        now=now,
    )
    if body.status is not None and body.status is not changed.status:
        changed = transition(
            changed, body.status, now=now, administrator=caller.administrator
        )
    if changed is order:
        return _order_response(order)
    return await _save(store, order, changed)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderOut,
    responses=problem_responses(*_AUTH, 404, 409, 412, 428),
)
async def cancel_order(
    order_id: str, caller: Writer, request: Request, if_match: IfMatch = None
) -> Response:
    """Cancel an order that has not shipped."""
    store = _store(request)
    order = await _visible(store, caller, order_id)
    check_if_match(if_match, order)
    cancelled = transition(
        order, Status.CANCELLED, now=_now(), administrator=caller.administrator
    )
    return await _save(store, order, cancelled)


@router.delete(
    "/{order_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(*_AUTH, 404, 409, 412),
)
async def delete_order(
    order_id: str, caller: Writer, request: Request, if_match: IfMatch = None
) -> Response:
    """Delete a pending order (If-Match optional: checked when sent)."""
    store = _store(request)
    order = await _visible(store, caller, order_id)
    if if_match is not None:
        check_if_match(if_match, order)
    ensure_deletable(order)
    if not await store.delete_pending(order.id, expected_version=order.version):
        current = await store.get(order.id)
        if current is None:
            raise OrderNotFound(order.id)
        raise PreconditionFailed(
            "The order changed while this request ran; fetch it again.",
            current_etag=current.etag,
        )
    return Response(status_code=204)
