"""identity's Prometheus metrics (names fixed by the platform contract)."""

from prometheus_client import Counter, Gauge

tokens_issued = Counter(
    "identity_tokens_issued_total",
    "Access tokens issued, by grant type.",
    ["grant_type"],
)
login_attempts = Counter(
    "identity_login_attempts_total",
    "Sign-in attempts on the login page, by outcome.",
    ["outcome"],
)
throttled_requests = Counter(
    "identity_throttled_requests_total",
    "Requests refused by throttling, by kind (login_account, login_address, "
    "client, client_address).",
    ["kind"],
)
signing_key_age = Gauge(
    "identity_signing_key_age_seconds",
    "Seconds since the active signing key started signing.",
)
