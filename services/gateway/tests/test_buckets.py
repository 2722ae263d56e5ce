"""Token-bucket arithmetic and the bounded in-memory store."""

import pytest

from gateway.buckets import MemoryBuckets, take_token


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_admits_capacity_requests_then_refuses() -> None:
    clock = FakeClock()
    buckets = MemoryBuckets(3, 1.0, clock=clock)

    taken = [buckets.take("alice") for _ in range(4)]

    assert [t.allowed for t in taken] == [True, True, True, False]
    assert [t.remaining for t in taken] == [2, 1, 0, 0]


def test_refill_gives_back_tokens_at_the_configured_rate() -> None:
    clock = FakeClock()
    buckets = MemoryBuckets(2, 2.0, clock=clock)
    buckets.take("alice")
    buckets.take("alice")
    assert not buckets.take("alice").allowed

    clock.now += 0.5  # one token at 2 a second

    assert buckets.take("alice").allowed
    assert not buckets.take("alice").allowed


def test_refill_never_exceeds_capacity() -> None:
    clock = FakeClock()
    buckets = MemoryBuckets(5, 10.0, clock=clock)
    buckets.take("alice")

    clock.now += 3600

    taken = buckets.take("alice")
    assert taken.allowed
    assert taken.remaining == 4
    assert taken.tokens == pytest.approx(4.0)


def test_fractional_rates_accumulate_partial_tokens() -> None:
    clock = FakeClock()
    buckets = MemoryBuckets(1, 0.25, clock=clock)
    assert buckets.take("alice").allowed

    refused = buckets.take("alice")
    assert not refused.allowed
    assert refused.retry_in == pytest.approx(4.0)

    for _ in range(3):
        clock.now += 1.0
        assert not buckets.take("alice").allowed
    clock.now += 1.0
    assert buckets.take("alice").allowed


def test_tenth_steps_that_sum_to_one_token_up_to_float_error_admit() -> None:
    tokens, stamp = 0.0, 0.0
    for _ in range(10):
        # Ten refusals of 0.1 s each: 0.1 added ten times is 0.9999999999999999.
        taken = take_token(tokens, stamp, stamp + 0.1, capacity=1, refill_per_second=1)
        tokens, stamp = taken.tokens, stamp + 0.1
        if taken.allowed:
            break

    assert taken.allowed


def test_a_clock_going_backwards_neither_refills_nor_drains() -> None:
    taken = take_token(2.5, 1000.0, 990.0, capacity=5, refill_per_second=1.0)

    assert taken.allowed
    assert taken.tokens == pytest.approx(1.5)


def test_after_the_clock_went_backwards_refill_resumes_from_the_new_time() -> None:
    clock = FakeClock(1000.0)
    buckets = MemoryBuckets(2, 1.0, clock=clock)
    buckets.take("alice")
    buckets.take("alice")

    clock.now = 500.0
    assert not buckets.take("alice").allowed
    clock.now = 501.0

    assert buckets.take("alice").allowed


def test_full_in_and_retry_in_describe_the_bucket() -> None:
    taken = take_token(0.5, 0.0, 0.0, capacity=4, refill_per_second=2.0)

    assert not taken.allowed
    assert taken.retry_in == pytest.approx(0.25)
    assert taken.full_in == pytest.approx(1.75)


def test_buckets_are_per_key() -> None:
    buckets = MemoryBuckets(1, 1.0, clock=FakeClock())

    assert buckets.take("alice").allowed
    assert buckets.take("bob").allowed
    assert not buckets.take("alice").allowed


def test_the_store_never_holds_more_than_max_keys() -> None:
    buckets = MemoryBuckets(10, 1.0, max_keys=100, clock=FakeClock())

    for index in range(10_000):
        buckets.take(f"client-{index}")

    assert len(buckets) == 100


def test_eviction_takes_the_least_recently_used_bucket() -> None:
    clock = FakeClock()
    buckets = MemoryBuckets(1, 0.001, max_keys=2, clock=clock)
    buckets.take("alice")
    buckets.take("bob")
    buckets.take("alice")  # alice is now the most recently used

    buckets.take("carol")  # evicts bob

    assert not buckets.take("alice").allowed
    assert buckets.take("bob").allowed


def test_evicting_a_bucket_that_had_refilled_is_not_counted_as_a_loss() -> None:
    clock = FakeClock()
    buckets = MemoryBuckets(2, 1.0, max_keys=1, clock=clock)
    buckets.take("alice")
    clock.now += 1.0  # alice is full again

    buckets.take("bob")
    assert buckets.evicted_partial == 0

    buckets.take("carol")  # bob has 1 of 2 tokens
    assert buckets.evicted_partial == 1
