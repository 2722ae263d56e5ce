"""Token buckets: the arithmetic, and a store of buckets in memory.

A bucket holds at most ``capacity`` tokens and gains ``refill_per_second``
tokens a second; each admitted request takes one. A bucket is fully described
by two numbers, the tokens it held and when it was last looked at, so a bucket
that nobody touched for ``capacity / refill_per_second`` seconds is full and
needs no storage at all: a missing bucket *is* a full one.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

# Enough for every active key of a busy gateway; ~150 bytes each (see README).
DEFAULT_MAX_KEYS = 100_000

# Refills in steps like 0.1 a tick sum to 0.9999999999 rather than 1; a token
# that is there up to float error counts as there.
EPSILON = 1e-9


class Take(NamedTuple):
    """What taking one token from a bucket gave.

    ``remaining`` is the whole tokens left; ``full_in`` the seconds until the
    bucket is full again; ``retry_in`` the seconds until one token is there
    (0 when the request was admitted). A named tuple rather than a frozen
    dataclass: built once per request, and several times cheaper to build.
    """

    allowed: bool
    tokens: float
    remaining: int
    full_in: float
    retry_in: float


def take_token(
    tokens: float,
    stamp: float,
    now: float,
    *,
    capacity: int,
    refill_per_second: float,
) -> Take:
    """Refill a bucket that held ``tokens`` at ``stamp`` up to ``now``, take one.

    A clock that went backwards (``now < stamp``, e.g. after a Redis failover
    to a replica whose clock lags) refills nothing rather than draining the
    bucket; the caller stores ``now`` as the new stamp, so the bucket never
    waits for the old clock to catch up.
    """
    # Conditionals rather than min()/max(): this runs once per request.
    elapsed = now - stamp
    if elapsed > 0.0:
        tokens += elapsed * refill_per_second
        if tokens > capacity:
            tokens = float(capacity)

    allowed = tokens >= 1.0 - EPSILON
    if allowed:
        tokens = tokens - 1.0 if tokens > 1.0 else 0.0
    return describe_take(
        allowed, tokens, capacity=capacity, refill_per_second=refill_per_second
    )


def describe_take(
    allowed: bool, tokens: float, *, capacity: int, refill_per_second: float
) -> Take:
    """The :class:`Take` of a bucket left with ``tokens`` after the attempt."""
    return Take(
        allowed,
        tokens,
        math.floor(tokens + EPSILON),
        (capacity - tokens) / refill_per_second,
        0.0 if allowed else (1.0 - tokens) / refill_per_second,
    )


class MemoryBuckets:
    """Buckets of one policy, in this process, at most ``max_keys`` of them.

    The buckets are kept in least-recently-used order. When a new key would
    exceed ``max_keys``, the least recently used bucket goes; if it was last
    touched more than a fill time ago it was full, and forgetting it changes
    nothing. Only when more than ``max_keys`` keys are active within one fill
    time does eviction forget a partly drained bucket, which then grants that
    key up to ``capacity`` extra requests: the price of bounded memory under a
    flood of distinct keys.
    """

    def __init__(
        self,
        capacity: int,
        refill_per_second: float,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self.max_keys = max_keys
        self.clock = clock
        # key -> (tokens, stamp)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.evicted_partial = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> Take:
        """Take one token from ``key``'s bucket."""
        now = self.clock()
        buckets = self._buckets
        state = buckets.get(key)
        if state is None:
            tokens, stamp = float(self.capacity), now
            if len(buckets) >= self.max_keys:
                self._evict_oldest(now)
        else:
            tokens, stamp = state
            buckets.move_to_end(key)

        taken = take_token(
            tokens,
            stamp,
            now,
            capacity=self.capacity,
            refill_per_second=self.refill_per_second,
        )
        buckets[key] = (taken.tokens, now)
        return taken

    def _evict_oldest(self, now: float) -> None:
        _, (tokens, stamp) = self._buckets.popitem(last=False)
        refilled = tokens + max(0.0, now - stamp) * self.refill_per_second
        if refilled < self.capacity:
            self.evicted_partial += 1
