"""The gateway's Prometheus metrics, with the names the platform agreed on.

Labels are bounded: upstream names come from the route file, outcomes and kinds
from fixed sets in the code, never from a request.
"""

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_REQUEST_DURATION = Histogram(
    "gateway_upstream_request_duration_seconds",
    "Time from sending a request upstream to the end of its response.",
    ["upstream"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors_total",
    "Upstream calls that failed, by kind (connect, timeout, status, refused).",
    ["upstream", "kind"],
)
CIRCUIT_STATE = Gauge(
    "gateway_circuit_state",
    "Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.",
    ["upstream"],
)
CIRCUIT_TRANSITIONS = Counter(
    "gateway_circuit_transitions_total",
    "Circuit breaker state changes.",
    ["upstream", "from_state", "to_state"],
)
JWKS_REFRESHES = Counter(
    "gateway_jwks_refreshes_total",
    "Fetches of the issuer's JWKS, by outcome (success, failure).",
    ["outcome"],
)
TOKEN_REJECTIONS = Counter(
    "gateway_token_rejections_total",
    "Requests refused at authentication, by reason.",
    ["reason"],
)
RATE_LIMIT_DECISIONS = Counter(
    "gateway_rate_limit_decisions_total",
    "Rate-limit decisions, by policy and outcome (allowed, refused, unavailable).",
    ["policy", "outcome"],
)
RATE_LIMIT_BACKEND_ERRORS = Counter(
    "gateway_rate_limit_backend_errors_total",
    "Calls to the shared rate-limit backend (Redis) that failed or timed out.",
)
