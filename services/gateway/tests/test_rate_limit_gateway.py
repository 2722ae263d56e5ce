"""Rate limits through real gateway processes: in memory, and on a shared Redis."""

import time
from collections import Counter

import httpx
import pytest

from tests.support.processes import ServiceProcess
from tests.support.servers import RedisServer
from tests.support.tokens import SigningKey, access_token_claims

ROUTES = [
    {"prefix": "/api", "upstream": "up", "strip_prefix": True, "rate_limit": "tight"},
    {
        "prefix": "/orders",
        "upstream": "up",
        "strip_prefix": True,
        "auth": {"required": True, "audience": "orders"},
        "rate_limit": "tight",
    },
]


def _policy(capacity: int) -> dict[str, dict[str, float]]:
    # A refill this slow adds no token during a test.
    return {"tight": {"capacity": capacity, "refill_per_second": 0.001}}


def _statuses(
    gateways: list[ServiceProcess], attempts: int, **kwargs: object
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for index in range(attempts):
        gateway = gateways[index % len(gateways)]
        response = httpx.get(f"{gateway.base_url}/api/echo", **kwargs)  # type: ignore[arg-type]
        statuses[response.status_code] += 1
    return statuses


def test_past_capacity_the_gateway_answers_429_problem_with_headers(
    start_gateway, upstream
):
    gateway = start_gateway(ROUTES, {"up": upstream.url}, rate_limits=_policy(2))

    first = httpx.get(f"{gateway.base_url}/api/echo")
    second = httpx.get(f"{gateway.base_url}/api/echo")
    third = httpx.get(f"{gateway.base_url}/api/echo")

    assert first.status_code == 200
    assert first.headers["ratelimit-policy"] == '"tight";q=2;w=2000'
    assert first.headers["ratelimit"] == '"tight";r=1;t=1000'
    assert second.headers["ratelimit"] == '"tight";r=0;t=2000'
    assert third.status_code == 429
    assert third.headers["content-type"] == "application/problem+json"
    assert third.headers["retry-after"] == "1000"
    assert third.headers["ratelimit-policy"] == '"tight";q=2;w=2000'
    assert third.headers["ratelimit"] == '"tight";r=0;t=2000'
    problem = third.json()
    assert problem["status"] == 429
    assert problem["title"] == "Too Many Requests"
    assert problem["detail"] == (
        "Rate limit 'tight' exceeded: 2 requests per 2000 s; retry in 1000 s."
    )
    assert problem["request_id"] == third.headers["x-request-id"]
    assert upstream.hits().get("/echo") == 2


def test_authenticated_callers_are_limited_by_subject_not_address(
    start_gateway, upstream, rsa_key: SigningKey
):
    gateway = start_gateway(ROUTES, {"up": upstream.url}, rate_limits=_policy(1))
    alice = rsa_key.sign(access_token_claims(sub="alice"))
    bob = rsa_key.sign(access_token_claims(sub="bob"))

    def get(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{gateway.base_url}/orders/echo", headers=headers).status_code

    assert [get(alice), get(bob), get(alice), get(bob)] == [200, 200, 429, 429]


@pytest.mark.redis
def test_two_gateways_sharing_redis_admit_the_limit_together_not_twice(
    start_gateway, upstream, redis_server: RedisServer
):
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    env = {"GATEWAY_REDIS_URL": redis_server.url}
    gateways = [
        start_gateway(ROUTES, {"up": upstream.url}, rate_limits=_policy(10), env=env)
        for _ in range(2)
    ]

    statuses = _statuses(gateways, 30)

    assert statuses == Counter({200: 10, 429: 20})


def _backend_warnings(gateway: ServiceProcess) -> int:
    return sum(
        1
        for line in gateway.log_lines()
        if line.get("event") == "rate limit backend unavailable"
        and line.get("level") == "warning"
    )


@pytest.mark.redis
def test_redis_down_then_back_fails_open_then_shares_again(
    start_gateway, upstream, redis_server: RedisServer
):
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    env = {
        "GATEWAY_REDIS_URL": redis_server.url,
        "GATEWAY_RATE_LIMIT_ON_REDIS_FAILURE": "open",
    }
    gateways = [
        start_gateway(ROUTES, {"up": upstream.url}, rate_limits=_policy(5), env=env)
        for _ in range(2)
    ]
    assert _statuses(gateways, 4) == Counter({200: 4})

    redis_server.stop()
    try:
        # Each gateway falls back to its own bucket: 5 each, never a 500.
        down = _statuses(gateways, 30)
    finally:
        redis_server.start()
    assert down == Counter({200: 10, 429: 20})
    # Thirty requests, one warning per gateway: the warning is rate-limited.
    assert [_backend_warnings(g) for g in gateways] == [1, 1]

    time.sleep(1.2)  # the limiter retries Redis a second after a failure
    # The restarted Redis is empty: one shared bucket of 5 again.
    assert _statuses(gateways, 30) == Counter({200: 5, 429: 25})


@pytest.mark.redis
def test_redis_down_failing_closed_answers_503_problem(
    start_gateway, upstream, redis_server: RedisServer
):
    env = {
        "GATEWAY_REDIS_URL": redis_server.url,
        "GATEWAY_RATE_LIMIT_ON_REDIS_FAILURE": "closed",
    }
    gateway = start_gateway(
        ROUTES, {"up": upstream.url}, rate_limits=_policy(5), env=env
    )

    redis_server.stop()
    try:
        response = httpx.get(f"{gateway.base_url}/api/echo")
        again = httpx.get(f"{gateway.base_url}/api/echo")
    finally:
        redis_server.start()

    assert response.status_code == 503
    assert again.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert "ratelimit" not in response.headers
    assert response.json()["detail"] == (
        "The rate limiter of policy 'tight' is unavailable; retry in 1 s."
    )
    assert _backend_warnings(gateway) == 1
