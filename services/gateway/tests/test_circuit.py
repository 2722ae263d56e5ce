"""The breaker's state machine, on a clock the test moves."""

import logging

import pytest

from gateway.circuit import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    CircuitOpen,
    CircuitState,
)
from gateway.metrics import CIRCUIT_STATE, CIRCUIT_TRANSITIONS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POLICY = CircuitBreakerPolicy(
    window=4,
    minimum_calls=4,
    failure_rate=0.5,
    open_seconds=2,
    max_open_seconds=5,
    half_open_probes=2,
)


def breaker(name: str) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(name, POLICY, clock=clock), clock


def state_of(breaker: CircuitBreaker) -> CircuitState:
    # A call, so that mypy does not narrow the state across the test's steps.
    return breaker.state


def calls(breaker: CircuitBreaker, *outcomes: bool) -> None:
    for outcome in outcomes:
        breaker.acquire()
        breaker.record(outcome)


def test_it_opens_once_the_failure_rate_over_the_window_is_reached():
    cb, _ = breaker("a")

    calls(cb, True, False, True)
    assert state_of(cb) is CircuitState.CLOSED  # three calls: too few to judge
    calls(cb, False)

    assert state_of(cb) is CircuitState.OPEN
    with pytest.raises(CircuitOpen) as refused:
        cb.acquire()
    assert refused.value.retry_after == 2
    assert cb.retry_after_seconds() == 2


def test_old_outcomes_leave_the_sliding_window():
    cb, _ = breaker("b")

    calls(cb, False, True, True, True, True, True, False)

    # The window holds the last four: one failure in four is below half.
    assert state_of(cb) is CircuitState.CLOSED


def test_half_open_lets_a_limited_number_of_probes_and_successes_close_it():
    cb, clock = breaker("c")
    calls(cb, False, False, False, False)
    clock.now += 2

    cb.acquire()
    assert state_of(cb) is CircuitState.HALF_OPEN
    cb.acquire()
    with pytest.raises(CircuitOpen):
        cb.acquire()  # both probes are out
    cb.record(True)
    cb.record(True)

    assert state_of(cb) is CircuitState.CLOSED
    calls(cb, True)


def test_a_failed_probe_reopens_with_a_longer_wait_up_to_the_maximum():
    cb, clock = breaker("d")
    calls(cb, False, False, False, False)

    waits = []
    for _ in range(3):
        clock.now += 10
        cb.acquire()
        cb.record(False)
        waits.append(cb.retry_after_seconds())

    assert waits == [4, 5, 5]
    clock.now += 5
    cb.acquire()
    cb.record(True)
    cb.acquire()
    cb.record(True)
    assert state_of(cb) is CircuitState.CLOSED
    calls(cb, False, False, False, False)
    assert cb.retry_after_seconds() == 2  # closing reset the backoff


def test_an_abandoned_probe_frees_its_slot():
    cb, clock = breaker("e")
    calls(cb, False, False, False, False)
    clock.now += 2
    cb.acquire()
    cb.acquire()

    cb.release()

    cb.acquire()
    assert state_of(cb) is CircuitState.HALF_OPEN


def test_each_transition_is_logged_counted_and_exported(caplog):
    cb, clock = breaker("f")
    caplog.set_level(logging.INFO, logger="gateway.circuit")

    calls(cb, False, False, False, False)
    assert CIRCUIT_STATE.labels("f")._value.get() == 1
    clock.now += 2
    cb.acquire()
    assert CIRCUIT_STATE.labels("f")._value.get() == 2
    cb.record(True)
    cb.acquire()
    cb.record(True)

    assert CIRCUIT_STATE.labels("f")._value.get() == 0
    assert [(r.message, r.from_state, r.to_state) for r in caplog.records] == [
        ("circuit open", "closed", "open"),
        ("circuit half-open", "open", "half_open"),
        ("circuit closed", "half_open", "closed"),
    ]
    assert CIRCUIT_TRANSITIONS.labels("f", "closed", "open")._value.get() == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"window": 2, "minimum_calls": 3},
            "minimum_calls (3) cannot exceed window (2)",
        ),
        (
            {"open_seconds": 10, "max_open_seconds": 5},
            "max_open_seconds (5) cannot be below open_seconds (10)",
        ),
    ],
)
def test_inconsistent_policies_are_refused(fields, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        CircuitBreakerPolicy(**fields)
