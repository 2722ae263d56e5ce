"""Cursors: opaque, exact round trips, and refused when not ours."""

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from orders.domain.errors import InvalidCursor
from orders.domain.listing import Cursor


def test_a_cursor_round_trips_to_the_microsecond():
    cursor = Cursor(datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC), "id-1")

    assert Cursor.decode(cursor.encode()) == cursor


def test_a_cursor_in_another_zone_is_read_as_utc():
    moment = datetime(2026, 12, 4, 2, tzinfo=timezone(timedelta(hours=1)))

    decoded = Cursor.decode(Cursor(moment, "x").encode())

    assert decoded.created_at == moment
    assert decoded.created_at.tzinfo is UTC


def _encoded(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "====",
        "e30",
        "W10",
        "WyJ4IiwgMV0",
        _encoded('["0001-01-01T00:00:00+01:00", "x"]'),
        _encoded('["2026-01-01T00:00:00+00:00", 5]'),
        _encoded('["2026-01-01T00:00:00+00:00", "x", "y"]'),
    ],
    ids=[
        "empty",
        "padding",
        "object",
        "empty-list",
        "number-first",
        "before-year-one-in-utc",
        "id-not-text",
        "three-members",
    ],
)
def test_anything_else_is_an_invalid_cursor(text):
    with pytest.raises(InvalidCursor) as raised:
        Cursor.decode(text)

    assert raised.value.field == "cursor"
    assert raised.value.where == "query"
