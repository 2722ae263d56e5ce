"""Request and response bodies of the orders API, as OpenAPI describes them.

Requests are strict: unknown members, strings for numbers and booleans for
integers are refused, each with the path of the member and the reason.
"""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orders.domain.listing import Cursor
from orders.domain.orders import (
    CURRENCIES,
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_TOTAL_MINOR,
    MAX_UNIT_PRICE_MINOR,
    SKU_PATTERN,
    Item,
    Order,
    Status,
)

_STRICT = ConfigDict(extra="forbid", strict=True)

Currency = Annotated[
    str,
    Field(
        description="ISO 4217 code, one of the accepted list.",
        json_schema_extra={"enum": sorted(CURRENCIES)},
        examples=["EUR"],
    ),
]


def _known_currency(value: str | None) -> str | None:
    if value is not None and value not in CURRENCIES:
        raise ValueError(
            f"{value!r} is not an accepted ISO 4217 code; "
            f"use one of {', '.join(sorted(CURRENCIES))}"
        )
    return value


class ItemIn(BaseModel):
    """One line of an order as the client sends it."""

    model_config = _STRICT

    sku: Annotated[str, Field(pattern=SKU_PATTERN, examples=["BOOK-0451"])]
    quantity: Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
    unit_price_minor: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_UNIT_PRICE_MINOR,
            description="Price of one unit in the currency's minor unit (cents).",
        ),
    ]

    def to_item(self) -> Item:
        return Item(self.sku, self.quantity, self.unit_price_minor)


class OrderCreate(BaseModel):
    """A new order; the server computes its total and owns its status."""

    model_config = _STRICT

    currency: Currency
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_ITEMS)]

    _currency = field_validator("currency")(_known_currency)


class OrderPatch(BaseModel):
    """Changes to an order: its items or currency (while pending), its status."""

    model_config = _STRICT

    currency: Currency | None = None
    items: Annotated[list[ItemIn] | None, Field(min_length=1, max_length=MAX_ITEMS)] = (
        None
    )
    status: Annotated[Status | None, Field(strict=False)] = None

    _currency = field_validator("currency")(_known_currency)


class ItemOut(BaseModel):
    sku: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int


class OrderOut(BaseModel):
    """An order as the API shows it; its ``version`` is also its ETag."""

    id: str
    owner: str
    status: Status
    currency: str
    items: list[ItemOut]
    total_minor: Annotated[int, Field(le=MAX_TOTAL_MINOR)]
    version: int
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    """One page of orders, newest first."""

    items: list[OrderOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class FieldError(BaseModel):
    field: str
    in_: str = Field(alias="in")
    reason: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem; OAuth failures add RFC 6750's ``error`` members."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    error: str | None = Field(None, description="RFC 6750 error code.")
    error_description: str | None = None
    scope: str | None = Field(None, description="The scope an operation needs.")


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def order_document(order: Order) -> dict[str, Any]:
    """The :class:`OrderOut` members of ``order``, built without validation.

    The hot read path serialises with this directly; a test checks that it
    always validates as :class:`OrderOut`.
    """
    return {
        "id": order.id,
        "owner": order.owner,
        "status": order.status.value,
        "currency": order.currency,
        "items": [
            {
                "sku": item.sku,
                "quantity": item.quantity,
                "unit_price_minor": item.unit_price_minor,
                "line_total_minor": item.line_total_minor,
            }
            for item in order.items
        ],
        "total_minor": order.total_minor,
        "version": order.version,
        "created_at": _timestamp(order.created_at),
        "updated_at": _timestamp(order.updated_at),
    }


def page_document(orders: list[Order], limit: int) -> dict[str, Any]:
    """A page of at most ``limit`` orders from ``limit + 1`` fetched."""
    shown = orders[:limit]
    more = len(orders) > limit
    return {
        "items": [order_document(order) for order in shown],
        "next_cursor": (
            Cursor(shown[-1].created_at, shown[-1].id).encode() if more else None
        ),
    }
