"""orders' Prometheus metrics (names fixed by the platform; labels bounded)."""

from prometheus_client import Counter

from orders.domain.orders import Status

ORDERS_CREATED = Counter(
    "orders_created_total", "Orders created (idempotent replays not counted)."
)
STATUS_TRANSITIONS = Counter(
    "orders_status_transitions_total",
    "Orders moved to a new status, by the status reached.",
    ["to_status"],
)
JWKS_REFRESHES = Counter(
    "orders_jwks_refreshes_total",
    "Fetches of identity's JWKS, by outcome (success, failure).",
    ["outcome"],
)

for _status in Status:
    if _status is not Status.PENDING:
        STATUS_TRANSITIONS.labels(to_status=_status.value)
for _outcome in ("success", "failure"):
    JWKS_REFRESHES.labels(outcome=_outcome)


def count_jwks_refresh(outcome: str) -> None:
    """The verifier's ``on_jwks_refresh`` listener."""
    JWKS_REFRESHES.labels(outcome=outcome).inc()
