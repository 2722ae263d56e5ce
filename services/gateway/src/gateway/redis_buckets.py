"""Token buckets shared by every replica, in Redis.

One Lua script refills and takes atomically (Redis runs a script alone), with
the clock of the Redis server (``TIME``), so replicas whose clocks disagree
still share one bucket. A bucket's key expires once it would be full again:
a missing key is a full bucket, and idle keys cost Redis no memory.
"""

import asyncio
import hashlib

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from gateway.buckets import Take, describe_take

# KEYS[1] the bucket (a hash: t = tokens, s = stamp in seconds);
# ARGV[1] capacity, ARGV[2] refill per second. Returns {allowed, tokens}.
TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end

local elapsed = now - stamp
if elapsed < 0 then
  elapsed = 0
end
tokens = math.min(capacity, tokens + elapsed * rate)

local allowed = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
  allowed = 1
end

redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens),
  's', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""
TAKE_SHA = hashlib.sha1(TAKE_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

KEY_PREFIX = "gateway:rate-limit:"
# Longer keys are hashed, so a huge key cannot bloat Redis.
MAX_RAW_KEY = 128


class BackendUnavailable(Exception):
    """Redis did not answer in time, refused the connection, or failed."""


def bucket_key(policy: str, key: str) -> str:
    """The Redis key of ``key``'s bucket of ``policy``."""
    if len(key) > MAX_RAW_KEY:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return f"{KEY_PREFIX}{policy}:{key}"


class RedisBuckets:
    """Buckets in the Redis at ``url``, every call bounded by ``timeout_seconds``."""

    def __init__(self, url: str, *, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._client = Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            # The limiter retries on its own schedule; a retry here would
            # multiply the time a request waits for a Redis that is down.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    async def take(
        self, policy_name: str, capacity: int, rate: float, key: str
    ) -> Take:
        """Take one token of ``key``'s bucket; raises :class:`BackendUnavailable`."""
        name = bucket_key(policy_name, key)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                allowed, tokens = await self._run(name, capacity, rate)
            admitted, left = bool(int(allowed)), float(tokens)
        except (RedisError, OSError, TimeoutError) as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except (ValueError, TypeError) as exc:
            # Not our script's answer (a proxy or another program on the port):
            # as unusable as no answer, and never a 500.
            raise BackendUnavailable(f"unexpected reply: {exc}") from exc

        return describe_take(admitted, left, capacity=capacity, refill_per_second=rate)

    async def _run(self, name: str, capacity: int, rate: float) -> list[bytes]:
        args = (name, capacity, repr(rate))
        try:
            reply = await self._client.evalsha(TAKE_SHA, 1, *args)
        except NoScriptError:
            # A restarted or new Redis has not seen the script; EVAL caches it.
            reply = await self._client.eval(TAKE_SCRIPT, 1, *args)
        return list(reply)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
