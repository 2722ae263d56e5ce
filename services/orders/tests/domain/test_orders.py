"""The order model's rules, without HTTP or a database."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orders.domain.errors import (
    ConflictingState,
    InvalidOrder,
    InvalidTransition,
    NeedsAdministrator,
)
from orders.domain.orders import (
    ALLOWED_TRANSITIONS,
    MAX_TOTAL_MINOR,
    Item,
    Status,
    ensure_deletable,
    new_order,
    revise,
    total_minor,
    transition,
)

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _order(**overrides):
    values: dict[str, Any] = {
        "owner": "alice",
        "currency": "EUR",
        "items": [Item("A", 2, 150), Item("B", 1, 5)],
        "now": NOW,
    }
    values.update(overrides)
    return new_order(**values)


def test_a_new_order_is_pending_at_version_one_with_its_total():
    order = _order()

    assert order.status is Status.PENDING
    assert order.version == 1
    assert order.total_minor == 305
    assert order.etag == '"1"'
    assert order.created_at == order.updated_at == NOW


def test_the_allowed_transitions_are_exactly_the_lifecycle():
    assert {s: set(t) for s, t in ALLOWED_TRANSITIONS.items()} == {
        Status.PENDING: {Status.CONFIRMED, Status.CANCELLED},
        Status.CONFIRMED: {Status.SHIPPED, Status.CANCELLED},
        Status.SHIPPED: {Status.DELIVERED},
        Status.DELIVERED: set(),
        Status.CANCELLED: set(),
    }


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("wanted", list(Status))
def test_every_pair_of_statuses_is_allowed_or_refused(current, wanted):
    order = _order()
    object.__setattr__(order, "status", current)

    if wanted in ALLOWED_TRANSITIONS[current]:
        moved = transition(order, wanted, now=NOW, administrator=True)
        assert (moved.status, moved.version) == (wanted, 2)
    else:
        with pytest.raises(InvalidTransition):
            transition(order, wanted, now=NOW, administrator=True)


def test_shipping_is_for_administrators():
    confirmed = transition(_order(), Status.CONFIRMED, now=NOW, administrator=False)

    with pytest.raises(NeedsAdministrator) as raised:
        transition(confirmed, Status.SHIPPED, now=NOW, administrator=False)

    assert raised.value.scope == "orders:admin"


def test_revising_recomputes_the_total_and_only_while_pending():
    later = NOW + timedelta(seconds=1)
    revised = revise(_order(), items=[Item("C", 3, 10)], currency=None, now=later)

    assert (revised.total_minor, revised.version, revised.updated_at) == (30, 2, later)
    confirmed = transition(revised, Status.CONFIRMED, now=later, administrator=False)
    with pytest.raises(ConflictingState):
        revise(confirmed, items=None, currency="USD", now=later)


def test_the_total_is_guarded_against_overflow():
    at_limit = [Item("A", 1, MAX_TOTAL_MINOR)]
    over = [Item("A", 1, MAX_TOTAL_MINOR), Item("B", 1, 1)]

    assert total_minor(at_limit) == MAX_TOTAL_MINOR
    with pytest.raises(InvalidOrder, match="total exceeds 9007199254740991"):
        total_minor(over)


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([Item("A", 0, 1)], "items.0.quantity"),
        ([Item("A", 10_001, 1)], "items.0.quantity"),
        ([Item("A", 1, -1)], "items.0.unit_price_minor"),
        ([Item("A", 1, 1), Item("A", 1, 1)], "items.1.sku"),
    ],
)
def test_the_domain_refuses_bad_items_itself(items, field):
    with pytest.raises(InvalidOrder) as raised:
        _order(items=items)

    assert raised.value.field == field


def test_an_unknown_currency_is_refused():
    with pytest.raises(InvalidOrder) as raised:
        _order(currency="BTC")

    assert raised.value.field == "currency"


def test_only_pending_orders_can_be_deleted():
    ensure_deletable(_order())
    cancelled = transition(_order(), Status.CANCELLED, now=NOW, administrator=False)

    with pytest.raises(ConflictingState, match="Cancel it instead"):
        ensure_deletable(cancelled)
