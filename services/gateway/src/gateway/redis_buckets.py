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


# One pipeline carries at most this many takes; more wait for the next one.
MAX_BATCH = 256

Reply = tuple[bool, float]


class RedisBuckets:
    """Buckets in the Redis at ``url``, every call bounded by ``timeout_seconds``.

    Takes that arrive in the same turn of the event loop travel together in
    one pipeline (each still its own atomic script call): under load that
    halves the gateway's CPU per Redis take (measured 75-90 us alone, 35-45 us
    pipelined, 32 concurrent callers) and saves round trips.
    """

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
        self._pending: list[tuple[str, int, str, asyncio.Future[Reply]]] = []
        self._flush_scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def take(
        self, policy_name: str, capacity: int, rate: float, key: str
    ) -> Take:
        """Take one token of ``key``'s bucket; raises :class:`BackendUnavailable`."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Reply] = loop.create_future()
        self._pending.append(
            (bucket_key(policy_name, key), capacity, repr(rate), reply)
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

        try:
            async with asyncio.timeout(self.timeout_seconds):
                admitted, left = await reply
        except TimeoutError as exc:
            raise BackendUnavailable(f"no answer in {self.timeout_seconds} s") from exc
        return describe_take(admitted, left, capacity=capacity, refill_per_second=rate)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), MAX_BATCH):
            task = asyncio.get_running_loop().create_task(
                self._send(pending[start : start + MAX_BATCH])
            )
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(
        self, batch: list[tuple[str, int, str, asyncio.Future[Reply]]]
    ) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                replies = await self._run(
                    [(name, cap, rate) for name, cap, rate, _ in batch]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            failure = BackendUnavailable(f"{type(exc).__name__}: {exc}")
            replies = [failure] * len(batch)

        for (_, _, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller gave up waiting
                continue
            if isinstance(reply, BaseException):
                future.set_exception(_unavailable(reply))
                continue
            try:
                if not isinstance(reply, list) or len(reply) != 2:
                    raise ValueError(repr(reply)[:100])
                allowed, tokens = reply
                future.set_result((bool(int(allowed)), float(tokens)))
            except (ValueError, TypeError) as exc:
                # Not our script's answer (another program on the port?):
                # as unusable as no answer, and never a 500.
                future.set_exception(BackendUnavailable(f"unexpected reply: {exc}"))

    async def _run(self, calls: list[tuple[str, int, str]]) -> list[object]:
        if len(calls) == 1:
            # Alone in its turn: a pipeline would only add its own cost.
            return [await self._single(*calls[0])]
        replies = await self._pipeline(TAKE_SHA, calls)
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if missing:
            # A restarted or new Redis has not seen the script; EVAL caches it.
            retried = await self._pipeline(None, [calls[i] for i in missing])
            for index, reply in zip(missing, retried, strict=True):
                replies[index] = reply
        return replies

    async def _single(self, name: str, capacity: int, rate: str) -> object:
        try:
            return await self._client.evalsha(TAKE_SHA, 1, name, capacity, rate)
        except NoScriptError:
            return await self._client.eval(TAKE_SCRIPT, 1, name, capacity, rate)

    async def _pipeline(
        self, sha: str | None, calls: list[tuple[str, int, str]]
    ) -> list[object]:
        pipe = self._client.pipeline(transaction=False)
        for name, capacity, rate in calls:
            if sha is None:
                pipe.eval(TAKE_SCRIPT, 1, name, capacity, rate)
            else:
                pipe.evalsha(sha, 1, name, capacity, rate)
        return list(await pipe.execute(raise_on_error=False))

    async def close(self) -> None:
        """Finish the takes in flight, then close the connection pool."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self.timeout_seconds)
        await self._client.aclose()


def _unavailable(reply: BaseException) -> BaseException:
    if isinstance(reply, BackendUnavailable):
        return reply
    return BackendUnavailable(f"{type(reply).__name__}: {reply}")
