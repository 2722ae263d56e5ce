"""The shared limit on a real Redis: replicas, expiry, scripts, outages."""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from gateway.rate_limit import REDIS_RETRY_SECONDS, RateLimiter, RateLimitPolicy
from gateway.redis_buckets import bucket_key
from tests.support.servers import RedisServer
from tests.support.tokens import JwksServer

pytestmark = pytest.mark.redis

POLICIES = {"shared": RateLimitPolicy(capacity=10, refill_per_second=0.01)}


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


def _limiter(url: str, **options: object) -> RateLimiter:
    return RateLimiter(POLICIES, redis_url=url, **options)  # type: ignore[arg-type]


async def _admitted(limiters: list[RateLimiter], key: str, attempts: int) -> int:
    admitted = 0
    for index in range(attempts):
        decision = await limiters[index % len(limiters)].acquire("shared", key)
        admitted += decision.allowed
    return admitted


async def test_two_replicas_admit_the_limit_together_not_twice(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    replicas = [_limiter(redis_server.url), _limiter(redis_server.url)]

    admitted = await _admitted(replicas, "alice", 30)

    assert admitted == 10
    last = await replicas[1].acquire("shared", "alice")
    assert not last.allowed
    assert last.headers()[1] == (b"ratelimit", b'"shared";r=0;t=1000')
    for limiter in replicas:
        await limiter.close()


async def test_concurrent_requests_on_two_replicas_never_exceed_the_limit(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    replicas = [_limiter(redis_server.url), _limiter(redis_server.url)]

    decisions = await asyncio.gather(
        *(replicas[i % 2].acquire("shared", "bob") for i in range(40))
    )

    assert sum(d.allowed for d in decisions) == 10
    for limiter in replicas:
        await limiter.close()


async def test_bucket_keys_expire_once_the_bucket_would_be_full(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    limiter = RateLimiter(
        {"fast": RateLimitPolicy(capacity=4, refill_per_second=2)},
        redis_url=redis_server.url,
    )

    await limiter.acquire("fast", "carol")

    # One token short of full: 0.5 s to refill, plus the script's 1 s margin.
    ttl = await redis_client.pttl(bucket_key("fast", "carol"))
    assert 1000 < ttl <= 1500
    await limiter.close()


async def test_a_flushed_script_cache_falls_back_to_eval(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    limiter = _limiter(redis_server.url)
    assert (await limiter.acquire("shared", "dave")).allowed

    await redis_client.script_flush()

    decision = await limiter.acquire("shared", "dave")
    assert decision.allowed
    assert decision.remaining == 8
    await limiter.close()


async def test_a_flushed_script_cache_falls_back_to_eval_in_a_pipeline(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    # Closed, so that a failed pipeline would show as unavailable.
    limiter = _limiter(redis_server.url, on_redis_failure="closed")
    await limiter.acquire("shared", "heidi")
    await redis_client.script_flush()

    # Twelve takes in one turn of the loop travel in one pipeline.
    decisions = await asyncio.gather(
        *(limiter.acquire("shared", "heidi") for _ in range(12))
    )

    assert sum(d.allowed for d in decisions) == 9
    assert not any(d.backend_unavailable for d in decisions)
    await limiter.close()


def test_huge_keys_are_hashed_into_a_bounded_redis_key() -> None:
    assert bucket_key("p", "short") == "gateway:rate-limit:p:short"
    hashed = bucket_key("p", "x" * 10_000)
    assert hashed.startswith("gateway:rate-limit:p:sha256:")
    assert len(hashed) < 100


async def test_redis_going_down_and_coming_back_mid_test(
    redis_server: RedisServer,
    redis_client: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    replicas = [_limiter(redis_server.url), _limiter(redis_server.url)]
    assert await _admitted(replicas, "erin", 4) == 4

    redis_server.stop()
    try:
        with caplog.at_level(logging.INFO, logger="gateway.rate_limit"):
            # Open: each replica falls back to its own bucket, so together
            # they admit up to twice the limit while Redis is away.
            down = await _admitted(replicas, "erin", 30)
        assert down == 20
    finally:
        redis_server.start()

    await asyncio.sleep(REDIS_RETRY_SECONDS + 0.1)
    with caplog.at_level(logging.INFO, logger="gateway.rate_limit"):
        # The restarted Redis is empty: the shared bucket is full again, once.
        back = await _admitted(replicas, "erin", 30)
    assert back == 10

    messages = [record.message for record in caplog.records]
    assert messages.count("rate limit backend unavailable") == 2  # one per replica
    assert messages.count("rate limit backend recovered") == 2
    for limiter in replicas:
        await limiter.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers, like a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


async def test_a_hung_redis_does_not_hang_requests(silent_server: int) -> None:
    limiter = _limiter(
        f"redis://127.0.0.1:{silent_server}/0",
        on_redis_failure="closed",
        redis_timeout_seconds=0.1,
    )

    decision = await asyncio.wait_for(limiter.acquire("shared", "frank"), 5)

    assert decision.backend_unavailable
    assert decision.status == 503
    await limiter.close()


async def test_a_port_that_speaks_another_protocol_is_a_backend_failure(
    jwks_server: JwksServer,
) -> None:
    port = int(jwks_server.url.split(":")[2].split("/")[0])
    limiter = _limiter(f"redis://127.0.0.1:{port}/0", on_redis_failure="open")
    errors = "gateway_rate_limit_backend_errors_total"
    before = REGISTRY.get_sample_value(errors) or 0.0

    decision = await limiter.acquire("shared", "grace")

    # Served by the local bucket, counted as a backend error, not raised.
    assert decision.allowed
    assert decision.remaining == 9
    assert REGISTRY.get_sample_value(errors) == before + 1
    await limiter.close()
