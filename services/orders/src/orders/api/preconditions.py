"""The request headers that make changes safe: ``If-Match`` and ``Idempotency-Key``."""

import hashlib
import re

import orjson
from pydantic import BaseModel

from orders.domain.errors import (
    InvalidHeader,
    PreconditionFailed,
    PreconditionRequired,
)
from orders.domain.orders import Order

# RFC 9110 section 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*')
# draft-ietf-httpapi-idempotency-key-header: an sf-string; the bare form that
# most clients send (Stripe's) is accepted too. Visible ASCII, bounded.
_IDEMPOTENCY_KEY = re.compile(r'"?([\x21\x23-\x7e]{1,255})"?')


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    tags = []
    for part in header.split(","):
        matched = _ENTITY_TAG.fullmatch(part)
        if matched is None:
            raise InvalidHeader(
                "If-Match",
                f"{header!r} is not a list of entity tags; "
                'send the ETag as received, e.g. If-Match: "3"',
            )
        tags.append((matched.group(1) is not None, f'"{matched.group(2)}"'))
    return tags


def check_if_match(header: str | None, order: Order) -> None:
    """Refuse the change unless ``If-Match`` names ``order``'s current version.

    Missing: 428 (RFC 6585 section 3), so that no client can overwrite a
    change it never saw. Stale: 412. ``If-Match`` compares strongly (RFC 9110
    section 13.1.1), so a weak tag never matches.
    """
    if header is None:
        raise PreconditionRequired(
            f"This change needs If-Match with the order's ETag; "
            f"GET /orders/{order.id} returns it."
        )
    if header.strip() == "*":
        return
    if not any(not weak and tag == order.etag for weak, tag in _entity_tags(header)):
        raise PreconditionFailed(
            f"The order changed since: it is at version {order.version}, "
            f"If-Match gave {header.strip()}. Fetch it again and retry.",
            current_etag=order.etag,
        )


def idempotency_key(header: str | None) -> str:
    """The key of an ``Idempotency-Key`` header, which creation requires."""
    if header is None:
        raise InvalidHeader(
            "Idempotency-Key",
            "required: send a unique value (a UUID) per order you create, "
            "and the same value when you retry",
        )
    matched = _IDEMPOTENCY_KEY.fullmatch(header)
    if matched is None:
        raise InvalidHeader(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters without quotes inside",
        )
    return matched.group(1)


def fingerprint(body: BaseModel) -> str:
    """A digest of the request as understood, not as spelled.

    Key order and whitespace do not change it, so a client that re-serialises
    its retry still matches; any different value does.
    """
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
