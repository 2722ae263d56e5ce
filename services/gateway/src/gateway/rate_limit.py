"""Rate limits: token-bucket policies, the decision for one request, its headers.

Each route may name a policy of the route file's ``rate_limits``; the pipeline
asks :meth:`RateLimiter.acquire` for one token of that policy's bucket for the
caller's key. Buckets live in this process (bounded, see :mod:`gateway.buckets`)
unless a Redis URL is configured, in which case every replica shares them
(:mod:`gateway.redis_buckets`), so N replicas admit the limit once, not N times.

When Redis cannot be reached, ``on_redis_failure`` decides: ``open`` takes the
token from this process's own bucket (each replica then enforces the limit on
its own), ``closed`` refuses with 503, since the caller exceeded nothing and a
429 would tell it so. Either way a warning is logged (at most one per
:data:`WARNING_INTERVAL_SECONDS`), ``gateway_rate_limit_backend_errors_total``
counts the failures, and Redis is tried again after
:data:`REDIS_RETRY_SECONDS`, so the shared limit applies again once it is back.
"""

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Send

from gateway.buckets import DEFAULT_MAX_KEYS, MemoryBuckets, Take
from gateway.metrics import RATE_LIMIT_BACKEND_ERRORS, RATE_LIMIT_DECISIONS
from gateway.redis_buckets import BackendUnavailable, RedisBuckets
from servicekit.problems import PROBLEM_MEDIA_TYPE, problem_body

logger = logging.getLogger(__name__)

FailurePolicy = Literal["open", "closed"]

# After a failed Redis call, requests skip Redis this long: a dead Redis then
# costs one timeout per interval, not one per request.
REDIS_RETRY_SECONDS = 1.0
WARNING_INTERVAL_SECONDS = 10.0


class RateLimitPolicy(BaseModel):
    """A token bucket: bursts of ``capacity``, ``refill_per_second`` sustained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity: int = Field(ge=1, description="Tokens a full bucket holds.")
    refill_per_second: float = Field(gt=0, description="Tokens regained a second.")

    @cached_property
    def window_seconds(self) -> int:
        """Seconds an empty bucket takes to fill: the draft's ``w``."""
        return max(1, math.ceil(self.capacity / self.refill_per_second))


def _sf_string(value: str) -> str:
    # RFC 8941 section 3.3.3: a String escapes only DQUOTE and backslash.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=1024)
def _policy_field(policy: str, limit: int, window: int) -> bytes:
    return f"{_sf_string(policy)};q={limit};w={window}".encode()


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request may pass, and what its answer tells the client.

    ``backend_unavailable`` marks a refusal because the shared backend failed
    under ``on_redis_failure=closed``: answered with 503, and without a
    ``RateLimit`` field, since nobody knows what remains.
    """

    allowed: bool
    policy: str
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: int | None
    window_seconds: int = 1
    backend_unavailable: bool = False

    @property
    def status(self) -> int:
        """The status of a refusal: 429, or 503 when the backend failed."""
        return 503 if self.backend_unavailable else 429

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Policy``, ``RateLimit`` and, when refused, ``Retry-After``.

        draft-ietf-httpapi-ratelimit-headers-09, sections 3 and 4: both are
        Structured Field Lists of a quoted policy name with parameters, ``q``
        (quota) and ``w`` (window, seconds) for the policy, ``r`` (remaining)
        and ``t`` (seconds until the quota is whole again) for the state.
        """
        fields = [
            (
                b"ratelimit-policy",
                _policy_field(self.policy, self.limit, self.window_seconds),
            )
        ]
        if not self.backend_unavailable:
            state = (
                f"{_sf_string(self.policy)};r={self.remaining}"
                f";t={math.ceil(self.reset_seconds)}"
            )
            fields.append((b"ratelimit", state.encode()))
        if self.retry_after_seconds is not None:
            fields.append((b"retry-after", str(self.retry_after_seconds).encode()))
        return fields


def refusal(decision: Decision) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and problem+json body answering a refused request."""
    if decision.backend_unavailable:
        detail = (
            f"The rate limiter of policy {decision.policy!r} is unavailable; "
            f"retry in {decision.retry_after_seconds} s."
        )
    else:
        detail = (
            f"Rate limit {decision.policy!r} exceeded: {decision.limit} requests "
            f"per {decision.window_seconds} s; retry in "
            f"{decision.retry_after_seconds} s."
        )
    body = orjson.dumps(problem_body(decision.status, detail))
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *decision.headers(),
    ]
    return decision.status, headers, body


async def send_refusal(send: Send, decision: Decision) -> None:
    """Answer a refused request with its 429 (or 503) problem+json."""
    status, headers, body = refusal(decision)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _decision(name: str, policy: RateLimitPolicy, taken: Take) -> Decision:
    return Decision(
        allowed=taken.allowed,
        policy=name,
        limit=policy.capacity,
        remaining=taken.remaining,
        reset_seconds=taken.full_in,
        # RFC 9110 section 10.2.3: delay-seconds, a whole number; rounding down
        # would invite a retry that is refused again.
        retry_after_seconds=None
        if taken.allowed
        else max(1, math.ceil(taken.retry_in)),
        window_seconds=policy.window_seconds,
    )


class RateLimiter:
    """Token buckets for every policy, in memory or shared through Redis."""

    def __init__(
        self,
        policies: Mapping[str, RateLimitPolicy],
        *,
        redis_url: str | None = None,
        on_redis_failure: FailurePolicy = "open",
        max_keys: int = DEFAULT_MAX_KEYS,
        redis_timeout_seconds: float = 0.25,
    ) -> None:
        self.policies = dict(policies)
        self.on_redis_failure = on_redis_failure
        self._local = {
            name: MemoryBuckets(
                policy.capacity, policy.refill_per_second, max_keys=max_keys
            )
            for name, policy in self.policies.items()
        }
        self._redis = (
            RedisBuckets(redis_url, timeout_seconds=redis_timeout_seconds)
            if redis_url
            else None
        )
        self._redis_down_until = 0.0
        self._redis_failing = False
        self._last_warning = -math.inf
        self._suppressed_warnings = 0
        self._counters = {
            (name, outcome): RATE_LIMIT_DECISIONS.labels(policy=name, outcome=outcome)
            for name in self.policies
            for outcome in ("allowed", "refused", "unavailable")
        }

    async def acquire(self, policy_name: str, key: str) -> Decision:
        """Take one token of ``policy_name`` for ``key``; the answer says if any was left.

        Never raises for a backend failure: ``on_redis_failure`` decides.
        """
        policy = self.policies[policy_name]
        decision = await self._decide(policy_name, policy, key)
        if decision.allowed:
            outcome = "allowed"
        elif decision.backend_unavailable:
            outcome = "unavailable"
        else:
            outcome = "refused"
        self._counters[policy_name, outcome].inc()
        return decision

    async def _decide(self, name: str, policy: RateLimitPolicy, key: str) -> Decision:
        if self._redis is None:
            return _decision(name, policy, self._local[name].take(key))

        if time.monotonic() >= self._redis_down_until:
            try:
                taken = await self._redis.take(
                    name, policy.capacity, policy.refill_per_second, key
                )
            except BackendUnavailable as exc:
                self._redis_failed(exc)
            else:
                self._redis_recovered()
                return _decision(name, policy, taken)

        if self.on_redis_failure == "open":
            return _decision(name, policy, self._local[name].take(key))
        return Decision(
            allowed=False,
            policy=name,
            limit=policy.capacity,
            remaining=0,
            reset_seconds=0.0,
            retry_after_seconds=math.ceil(REDIS_RETRY_SECONDS),
            window_seconds=policy.window_seconds,
            backend_unavailable=True,
        )

    def _redis_failed(self, exc: BackendUnavailable) -> None:
        RATE_LIMIT_BACKEND_ERRORS.inc()
        now = time.monotonic()
        self._redis_down_until = now + REDIS_RETRY_SECONDS
        self._redis_failing = True
        if now - self._last_warning < WARNING_INTERVAL_SECONDS:
            self._suppressed_warnings += 1
            return

        logger.warning(
            "rate limit backend unavailable",
            extra={
                "error": str(exc),
                "on_redis_failure": self.on_redis_failure,
                "suppressed_warnings": self._suppressed_warnings,
            },
        )
        self._last_warning = now
        self._suppressed_warnings = 0

    def _redis_recovered(self) -> None:
        if not self._redis_failing:
            return
        self._redis_failing = False
        logger.info("rate limit backend recovered")

    async def close(self) -> None:
        """Close the connections to Redis, if any."""
        if self._redis is not None:
            await self._redis.close()
