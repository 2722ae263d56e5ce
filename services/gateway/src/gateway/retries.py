"""Timeouts, and retries that cannot turn a slow upstream into a stampede.

Only idempotent methods are retried (RFC 9110 section 9.2.2), and only when no
byte of the request body has been sent (a streamed body cannot be replayed).
Each retry waits a jittered, growing delay ("full jitter"), so that clients
that failed together do not come back together. A retry budget per upstream
bounds retries to a fraction of the traffic: every first attempt deposits
``budget_ratio`` of a retry, every retry spends one, and the balance never
exceeds ``budget_reserve``, so over N requests at most
``budget_reserve + budget_ratio * N`` retries are made.
"""

import random

from pydantic import BaseModel, ConfigDict, Field

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class Timeouts(BaseModel):
    """The ``timeouts`` block of a route, in seconds; expiry answers 504."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect: float = Field(2.0, gt=0, description="To open a connection upstream.")
    read: float = Field(30.0, gt=0, description="Between two reads from upstream.")
    total: float = Field(60.0, gt=0, description="For the whole exchange.")


class RetryPolicy(BaseModel):
    """The ``retry`` block of a route."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(
        2, ge=1, le=5, description="Tries in all, the first included."
    )
    backoff_seconds: float = Field(0.05, ge=0, description="Base of the delay.")
    max_backoff_seconds: float = Field(1.0, ge=0, description="Longest delay.")
    statuses: frozenset[int] = Field(
        frozenset({502, 503, 504}), description="Upstream statuses worth a retry."
    )
    budget_ratio: float = Field(
        0.2, ge=0, le=1, description="Retries allowed per request, on average."
    )
    budget_reserve: float = Field(
        10.0, ge=0, description="Retries that may be spent at once."
    )


def backoff_delay(policy: RetryPolicy, retry: int) -> float:
    """A random delay before retry number ``retry`` (1 for the first retry)."""
    ceiling = min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** (retry - 1))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


class RetryBudget:
    """The retries one upstream may still spend."""

    def __init__(self, ratio: float, reserve: float) -> None:
        self.ratio = ratio
        self.reserve = reserve
        self._balance = reserve

    def deposit(self) -> None:
        """A first attempt was made."""
        self._balance = min(self.reserve, self._balance + self.ratio)

    def withdraw(self) -> bool:
        """Spend one retry if the budget allows it."""
        if self._balance < 1:
            return False
        self._balance -= 1
        return True
