"""A circuit breaker per upstream.

Closed, the breaker lets every call through and remembers the outcome of the
last ``window`` calls. Once at least ``minimum_calls`` are known and the share
of failures reaches ``failure_rate``, it opens: calls are refused at once (a 503
with ``Retry-After``) instead of piling onto an upstream that is down. After
``open_seconds`` it turns half-open and lets ``half_open_probes`` calls through;
if they all succeed it closes, if one fails it opens again for twice as long, up
to ``max_open_seconds``.

A failure is a connect error, a timeout, or a status the route file lists as
one (502, 503 and 504 by default). A call the client abandoned says nothing
about the upstream and is not counted.
"""

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway import metrics

logger = logging.getLogger(__name__)


class CircuitState(IntEnum):
    """The breaker's states, valued as the ``gateway_circuit_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class CircuitBreakerPolicy(BaseModel):
    """The ``circuit_breaker`` block of an upstream in the route file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(20, ge=1, description="Calls remembered while closed.")
    minimum_calls: int = Field(10, ge=1, description="Calls needed before judging.")
    failure_rate: float = Field(0.5, gt=0, le=1, description="Share that opens it.")
    open_seconds: float = Field(5.0, gt=0, description="First open period.")
    max_open_seconds: float = Field(60.0, gt=0, description="Longest open period.")
    half_open_probes: int = Field(2, ge=1, description="Trial calls when half-open.")
    failure_statuses: frozenset[int] = Field(
        frozenset({502, 503, 504}),
        description="Upstream statuses that count as failures.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "CircuitBreakerPolicy":
        if self.minimum_calls > self.window:
            raise ValueError(
                f"minimum_calls ({self.minimum_calls}) cannot exceed "
                f"window ({self.window})"
            )
        if self.max_open_seconds < self.open_seconds:
            raise ValueError(
                f"max_open_seconds ({self.max_open_seconds:g}) cannot be below "
                f"open_seconds ({self.open_seconds:g})"
            )
        return self


class CircuitOpen(Exception):
    """The upstream's breaker refuses calls for ``retry_after`` more seconds."""

    def __init__(self, upstream: str, retry_after: float) -> None:
        super().__init__(f"circuit of {upstream!r} is open")
        self.upstream = upstream
        self.retry_after = retry_after


class CircuitBreaker:
    """The breaker of one upstream; not thread-safe, one event loop uses it."""

    def __init__(
        self,
        upstream: str,
        policy: CircuitBreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.policy = policy
        self._clock = clock
        self.state = CircuitState.CLOSED
        self._outcomes: deque[bool] = deque(maxlen=policy.window)
        self._failures = 0
        self._open_until = 0.0
        self._open_seconds = policy.open_seconds
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._gauge = metrics.CIRCUIT_STATE.labels(upstream)
        self._gauge.set(CircuitState.CLOSED)

    def acquire(self) -> None:
        """Admit one call, or raise :class:`CircuitOpen`."""
        if self.state is CircuitState.CLOSED:
            return

        now = self._clock()
        if self.state is CircuitState.OPEN:
            if now < self._open_until:
                raise CircuitOpen(self.upstream, self._open_until - now)
            self._transition(CircuitState.HALF_OPEN)

        if (
            self._probes_in_flight + self._probe_successes
            >= self.policy.half_open_probes
        ):
            # The probes allowed are under way; others wait for their verdict.
            raise CircuitOpen(self.upstream, min(self._open_seconds, 1.0))
        self._probes_in_flight += 1

    def record(self, success: bool) -> None:
        """The outcome of a call :meth:`acquire` admitted."""
        if self.state is CircuitState.HALF_OPEN:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
            if not success:
                self._open(backoff=True)
                return
            self._probe_successes += 1
            if self._probe_successes >= self.policy.half_open_probes:
                self._close()
            return

        if self.state is CircuitState.OPEN:
            # A call admitted before the breaker opened finished late.
            return

        if len(self._outcomes) == self._outcomes.maxlen and not self._outcomes[0]:
            self._failures -= 1
        self._outcomes.append(success)
        if not success:
            self._failures += 1
            if (
                len(self._outcomes) >= self.policy.minimum_calls
                and self._failures >= self.policy.failure_rate * len(self._outcomes)
            ):
                self._open(backoff=False)

    def release(self) -> None:
        """A call :meth:`acquire` admitted ended without a verdict (abandoned)."""
        if self.state is CircuitState.HALF_OPEN:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)

    def retry_after_seconds(self) -> int:
        """Whole seconds until the breaker lets a probe through (at least 1)."""
        return max(1, math.ceil(self._open_until - self._clock()))

    def _open(self, *, backoff: bool) -> None:
        if backoff:
            self._open_seconds = min(
                self._open_seconds * 2, self.policy.max_open_seconds
            )
        self._open_until = self._clock() + self._open_seconds
        self._transition(CircuitState.OPEN)

    def _close(self) -> None:
        self._outcomes.clear()
        self._failures = 0
        self._open_seconds = self.policy.open_seconds
        self._transition(CircuitState.CLOSED)

    def _transition(self, to_state: CircuitState) -> None:
        from_state = self.state
        self.state = to_state
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._gauge.set(to_state)
        metrics.CIRCUIT_TRANSITIONS.labels(
            self.upstream, from_state.label, to_state.label
        ).inc()
        log = logger.warning if to_state is CircuitState.OPEN else logger.info
        log(
            "circuit " + to_state.label.replace("_", "-"),
            extra={
                "upstream": self.upstream,
                "from_state": from_state.label,
                "to_state": to_state.label,
                "open_seconds": self._open_seconds
                if to_state is CircuitState.OPEN
                else None,
            },
        )
