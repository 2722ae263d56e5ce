"""The limiter's decisions, their headers and the 429 answer, in memory."""

import json
import logging

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from gateway.rate_limit import Decision, RateLimiter, RateLimitPolicy, refusal


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_policy_rejects_unknown_fields_and_non_positive_values() -> None:
    with pytest.raises(ValidationError, match="capacity"):
        RateLimitPolicy(capacity=0, refill_per_second=1)
    with pytest.raises(ValidationError, match="refill_per_second"):
        RateLimitPolicy(capacity=1, refill_per_second=0)
    with pytest.raises(ValidationError, match="burst"):
        RateLimitPolicy.model_validate(
            {"capacity": 1, "refill_per_second": 1, "burst": 2}
        )


def test_window_is_the_time_an_empty_bucket_takes_to_fill() -> None:
    assert RateLimitPolicy(capacity=100, refill_per_second=50).window_seconds == 2
    assert RateLimitPolicy(capacity=20, refill_per_second=3).window_seconds == 7
    assert RateLimitPolicy(capacity=1, refill_per_second=100).window_seconds == 1


def test_allowed_decision_carries_policy_and_state_fields() -> None:
    decision = Decision(
        allowed=True,
        policy="default",
        limit=100,
        remaining=41,
        reset_seconds=1.2,
        retry_after_seconds=None,
        window_seconds=2,
    )

    assert decision.headers() == [
        (b"ratelimit-policy", b'"default";q=100;w=2'),
        (b"ratelimit", b'"default";r=41;t=2'),
    ]


def test_refused_decision_adds_retry_after() -> None:
    decision = Decision(
        allowed=False,
        policy="auth",
        limit=20,
        remaining=0,
        reset_seconds=4.0,
        retry_after_seconds=1,
        window_seconds=4,
    )

    assert decision.headers() == [
        (b"ratelimit-policy", b'"auth";q=20;w=4'),
        (b"ratelimit", b'"auth";r=0;t=4'),
        (b"retry-after", b"1"),
    ]


def test_policy_names_are_escaped_as_structured_field_strings() -> None:
    decision = Decision(True, 'a"b\\c', 1, 0, 0.5, None)

    assert decision.headers()[0] == (b"ratelimit-policy", b'"a\\"b\\\\c";q=1;w=1')


async def test_limiter_refuses_past_capacity_with_a_problem_document() -> None:
    limiter = RateLimiter({"tight": RateLimitPolicy(capacity=2, refill_per_second=0.5)})
    before = _sample(
        "gateway_rate_limit_decisions_total", policy="tight", outcome="refused"
    )

    first = await limiter.acquire("tight", "alice")
    second = await limiter.acquire("tight", "alice")
    third = await limiter.acquire("tight", "alice")

    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.retry_after_seconds == 2
    status, headers, body = refusal(third)
    assert status == 429
    assert (b"content-type", b"application/problem+json") in headers
    assert (b"retry-after", b"2") in headers
    assert (b"ratelimit", b'"tight";r=0;t=4') in headers
    assert json.loads(body) == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Rate limit 'tight' exceeded: 2 requests per 4 s; retry in 2 s.",
        "request_id": None,
    }
    after = _sample(
        "gateway_rate_limit_decisions_total", policy="tight", outcome="refused"
    )
    assert after == before + 1
    await limiter.close()


async def test_keys_have_separate_buckets() -> None:
    limiter = RateLimiter({"one": RateLimitPolicy(capacity=1, refill_per_second=0.01)})

    assert (await limiter.acquire("one", "alice")).allowed
    assert (await limiter.acquire("one", "bob")).allowed
    assert not (await limiter.acquire("one", "alice")).allowed


async def test_unknown_policy_is_a_programming_error() -> None:
    limiter = RateLimiter({})

    with pytest.raises(KeyError):
        await limiter.acquire("nope", "alice")


async def test_unreachable_redis_failing_open_uses_the_local_bucket(
    caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    limiter = RateLimiter(
        {"p": RateLimitPolicy(capacity=2, refill_per_second=0.01)},
        redis_url=f"redis://127.0.0.1:{unused_tcp_port}/0",
        on_redis_failure="open",
    )
    errors_before = _sample("gateway_rate_limit_backend_errors_total")

    with caplog.at_level(logging.WARNING, logger="gateway.rate_limit"):
        decisions = [await limiter.acquire("p", "alice") for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    assert not decisions[2].backend_unavailable
    warnings = [
        r for r in caplog.records if r.message == "rate limit backend unavailable"
    ]
    assert len(warnings) == 1
    # Later requests skip the dead Redis for a while: one error, not three.
    assert _sample("gateway_rate_limit_backend_errors_total") == errors_before + 1
    await limiter.close()


async def test_unreachable_redis_failing_closed_answers_503(
    unused_tcp_port: int,
) -> None:
    limiter = RateLimiter(
        {"p": RateLimitPolicy(capacity=5, refill_per_second=1)},
        redis_url=f"redis://127.0.0.1:{unused_tcp_port}/0",
        on_redis_failure="closed",
    )
    before = _sample(
        "gateway_rate_limit_decisions_total", policy="p", outcome="unavailable"
    )

    decision = await limiter.acquire("p", "alice")

    assert not decision.allowed
    status, headers, body = refusal(decision)
    assert status == 503
    assert (b"retry-after", b"1") in headers
    assert not any(name == b"ratelimit" for name, _ in headers)
    assert json.loads(body)["detail"] == (
        "The rate limiter of policy 'p' is unavailable; retry in 1 s."
    )
    assert (
        _sample("gateway_rate_limit_decisions_total", policy="p", outcome="unavailable")
        == before + 1
    )
    await limiter.close()
