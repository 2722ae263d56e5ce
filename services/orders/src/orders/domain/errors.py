"""Every error orders answers deliberately; ``orders.api.errors`` maps them to HTTP.

One tree, so that the API layer needs a single handler and a test can name the
kind of failure without knowing its status code.
"""


class OrdersError(Exception):
    """Base of orders' own errors; ``detail`` is safe to show the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(OrdersError):
    """A value the client sent breaks a rule; ``field`` names where it is."""

    def __init__(self, field: str, reason: str, *, where: str = "body") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.where = where


class InvalidOrder(InvalidInput):
    """The order described would break a rule of the order model."""


class InvalidCursor(InvalidInput):
    """The pagination cursor was not issued by this API, or was altered."""

    def __init__(self, reason: str) -> None:
        super().__init__("cursor", reason, where="query")


class InvalidHeader(InvalidInput):
    """A request header (``If-Match``, ``Idempotency-Key``) is malformed."""

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(header, reason, where="header")


class OrderNotFound(OrdersError):
    """No order with this id is visible to the caller.

    Another subject's order is reported the same way as a missing one, so that
    ids cannot be probed.
    """

    def __init__(self, order_id: str) -> None:
        super().__init__(f"No order {order_id!r}.")
        self.order_id = order_id


class ConflictingState(OrdersError):
    """The order's current status does not allow the operation."""


class InvalidTransition(ConflictingState):
    """The status change is not one of the allowed transitions."""

    def __init__(self, current: str, wanted: str, allowed: list[str]) -> None:
        choices = ", ".join(allowed) if allowed else "none: it is final"
        super().__init__(
            f"An order that is {current!r} cannot become {wanted!r}; "
            f"allowed: {choices}."
        )
        self.current = current
        self.wanted = wanted
        self.allowed = allowed


class NeedsAdministrator(OrdersError):
    """Only back office (``orders:admin``) may perform this step."""

    def __init__(self, detail: str, scope: str) -> None:
        super().__init__(detail)
        self.scope = scope


class PreconditionRequired(OrdersError):
    """A change was sent without ``If-Match`` (RFC 6585 section 3)."""


class PreconditionFailed(OrdersError):
    """``If-Match`` names a version that is no longer current."""

    def __init__(self, detail: str, current_etag: str) -> None:
        super().__init__(detail)
        self.current_etag = current_etag


class IdempotencyKeyReused(OrdersError):
    """The ``Idempotency-Key`` was already used with a different request body."""
