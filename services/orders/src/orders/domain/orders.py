"""The order: its items, its total, its status and the changes it allows."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from orders.domain.errors import (
    ConflictingState,
    InvalidOrder,
    InvalidTransition,
    NeedsAdministrator,
)

# ISO 4217 codes accepted; a fixed list, because an unknown code is far more
# often a typo than a currency this shop settles in.
CURRENCIES = frozenset(
    {
        "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD",
        "HUF", "INR", "JPY", "KRW", "MXN", "NOK", "NZD", "PLN", "SEK", "SGD",
        "USD", "ZAR",
    }
)  # fmt: skip

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_UNIT_PRICE_MINOR = 10**12
# Totals stay exact in every JSON parser: 2**53 - 1 is the largest integer an
# IEEE double (JavaScript's only number) holds without rounding.
MAX_TOTAL_MINOR = 2**53 - 1


class Status(StrEnum):
    """Where an order is in its life."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


ALLOWED_TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.PENDING: (Status.CONFIRMED, Status.CANCELLED),
    Status.CONFIRMED: (Status.SHIPPED, Status.CANCELLED),
    Status.SHIPPED: (Status.DELIVERED,),
    Status.DELIVERED: (),
    Status.CANCELLED: (),
}

# Shipping and delivery are the warehouse's word, not the customer's.
ADMINISTRATOR_TRANSITIONS = frozenset({Status.SHIPPED, Status.DELIVERED})


@dataclass(frozen=True)
class Item:
    """One line of an order: a SKU, how many, and the price of one."""

    sku: str
    quantity: int
    unit_price_minor: int

    @property
    def line_total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True)
class Order:
    """An order as stored; ``version`` grows by one with every change."""

    id: str
    owner: str
    status: Status
    currency: str
    items: tuple[Item, ...]
    total_minor: int
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def etag(self) -> str:
        """The strong entity tag of this version (RFC 9110 section 8.8.3)."""
        return f'"{self.version}"'


def _check_items(items: Sequence[Item]) -> None:
    if not items:
        raise InvalidOrder("items", "an order needs at least one item")
    if len(items) > MAX_ITEMS:
        raise InvalidOrder("items", f"at most {MAX_ITEMS} items, got {len(items)}")
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not 0 < item.quantity <= MAX_QUANTITY:
            raise InvalidOrder(
                f"items.{index}.quantity",
                f"must be between 1 and {MAX_QUANTITY}, got {item.quantity}",
            )
        if not 0 <= item.unit_price_minor <= MAX_UNIT_PRICE_MINOR:
            raise InvalidOrder(
                f"items.{index}.unit_price_minor",
                f"must be between 0 and {MAX_UNIT_PRICE_MINOR}, "
                f"got {item.unit_price_minor}",
            )
        if item.sku in seen:
            raise InvalidOrder(
                f"items.{index}.sku",
                f"SKU {item.sku!r} appears twice; add the quantities instead",
            )
        seen.add(item.sku)


def total_minor(items: Sequence[Item]) -> int:
    """The sum of the lines, refused above :data:`MAX_TOTAL_MINOR`."""
    total = 0
    for item in items:
        total += item.line_total_minor
        if total > MAX_TOTAL_MINOR:
            raise InvalidOrder(
                "items",
                f"the order's total exceeds {MAX_TOTAL_MINOR} minor units",
            )
    return total


def _check_currency(currency: str) -> None:
    if currency not in CURRENCIES:
        raise InvalidOrder(
            "currency",
            f"{currency!r} is not an accepted ISO 4217 code; "
            f"use one of {', '.join(sorted(CURRENCIES))}",
        )


def new_order(
    *, owner: str, currency: str, items: Sequence[Item], now: datetime
) -> Order:
    """A pending order for ``owner``, its total computed here, never by the client."""
    _check_currency(currency)
    _check_items(items)
    return Order(
        id=str(uuid.uuid4()),
        owner=owner,
        status=Status.PENDING,
        currency=currency,
        items=tuple(items),
        total_minor=total_minor(items),
        version=1,
        created_at=now,
        updated_at=now,
    )


def revise(
    order: Order,
    *,
    items: Sequence[Item] | None,
    currency: str | None,
    now: datetime,
) -> Order:
    """``order`` with new items or currency: only while nothing is promised yet."""
    if items is None and currency is None:
        return order
    if order.status is not Status.PENDING:
        raise ConflictingState(
            f"Only a pending order's items and currency can change; "
            f"this one is {order.status.value!r}."
        )
    new_items = order.items if items is None else tuple(items)
    new_currency = order.currency if currency is None else currency
    _check_currency(new_currency)
    _check_items(new_items)
    return replace(
        order,
        items=new_items,
        currency=new_currency,
        total_minor=total_minor(new_items),
        version=order.version + 1,
        updated_at=now,
    )


def transition(
    order: Order, to: Status, *, now: datetime, administrator: bool
) -> Order:
    """``order`` moved to status ``to``, if that move is allowed and allowed to the caller."""
    allowed = ALLOWED_TRANSITIONS[order.status]
    if to not in allowed:
        raise InvalidTransition(
            order.status.value, to.value, [status.value for status in allowed]
        )
    if to in ADMINISTRATOR_TRANSITIONS and not administrator:
        raise NeedsAdministrator(
            f"Only back office (scope 'orders:admin') marks an order {to.value!r}.",
            scope="orders:admin",
        )
    return replace(order, status=to, version=order.version + 1, updated_at=now)


def ensure_deletable(order: Order) -> None:
    """Deleting erases history, so it is only for orders nothing happened to yet."""
    if order.status is not Status.PENDING:
        raise ConflictingState(
            f"Only a pending order can be deleted; this one is "
            f"{order.status.value!r}. Cancel it instead."
        )
