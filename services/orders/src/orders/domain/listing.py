"""Keyset pagination over orders, newest first.

A page ends with a cursor naming the last order shown, ``(created_at, id)``;
the next page is every order strictly after it in that order. Unlike an offset,
the position does not move when orders are created meanwhile: new orders are
newer than every cursor, so they never push a row onto a later page twice.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from orders.domain.errors import InvalidCursor

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_CURSOR_LENGTH = 200


@dataclass(frozen=True)
class Cursor:
    """The position after which the next page starts."""

    created_at: datetime
    order_id: str

    def encode(self) -> str:
        """An opaque, URL-safe form of the position."""
        raw = json.dumps(
            [self.created_at.isoformat(), self.order_id], separators=(",", ":")
        )
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """The position ``text`` names, or :class:`InvalidCursor`."""
        if len(text) > _MAX_CURSOR_LENGTH:
            raise InvalidCursor("too long to be a cursor this API issued")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            created, order_id = json.loads(raw)
            created_at = datetime.fromisoformat(created)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidCursor(
                "not a cursor this API issued; pass next_cursor from a page as is"
            ) from exc
        if not isinstance(order_id, str) or created_at.tzinfo is None:
            raise InvalidCursor(
                "not a cursor this API issued; pass next_cursor from a page as is"
            )
        try:
            return cls(created_at.astimezone(UTC), order_id)
        except OverflowError as exc:
            # 0001-01-01T00:00+01:00 is a valid ISO time but before year 1 in UTC.
            raise InvalidCursor(
                "not a cursor this API issued; pass next_cursor from a page as is"
            ) from exc
