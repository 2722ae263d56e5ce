"""Retry budget and backoff arithmetic."""

from gateway.retries import RetryBudget, RetryPolicy, backoff_delay


def test_the_budget_allows_the_reserve_then_a_fraction_of_requests():
    budget = RetryBudget(ratio=0.25, reserve=2)
    spent = 0
    for _ in range(100):
        budget.deposit()
        while budget.withdraw():
            spent += 1

    assert 2 <= spent <= 2 + 0.25 * 100


def test_an_idle_budget_never_saves_more_than_its_reserve():
    budget = RetryBudget(ratio=0.5, reserve=3)
    for _ in range(1000):
        budget.deposit()

    assert [budget.withdraw() for _ in range(4)] == [True, True, True, False]


def test_backoff_is_jittered_below_a_growing_ceiling():
    policy = RetryPolicy(backoff_seconds=0.1, max_backoff_seconds=0.3)

    delays = [[backoff_delay(policy, retry) for _ in range(200)] for retry in (1, 2, 3)]

    assert all(0 <= d <= 0.1 for d in delays[0])
    assert all(0 <= d <= 0.2 for d in delays[1])
    assert all(0 <= d <= 0.3 for d in delays[2])
    assert len(set(delays[0])) > 100  # random, not a fixed step
