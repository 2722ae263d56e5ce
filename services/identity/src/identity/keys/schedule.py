"""When keys are created, sign, and stop being published: pure rules, no I/O.

Rotation follows the rule clients that cache a JWKS need (the failure Dex's
six-hourly rotation causes, "unable to find key with kid"):

- a new key is *published* ``publish_ahead`` seconds before it *signs*, longer
  than any JWKS cache may hold the old document (the ``max-age`` we advertise
  plus how long a replica may take to load the new key);
- the key it replaces stays published until every token it signed has expired.

Every replica reads the same rows and compares with the wall clock, so all of
them switch to the new key at the same moment without talking to each other.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


class Scheduled(Protocol):
    @property
    def generation(self) -> int: ...

    @property
    def activates_at(self) -> float: ...


K = TypeVar("K", bound=Scheduled)


@dataclass(frozen=True)
class RotationPolicy:
    """Timings of the key schedule, all in seconds."""

    rotation_period: float
    jwks_max_age: float
    refresh_interval: float
    longest_token_lifetime: float
    # Verifiers accept a token this long after its ``exp`` (servicekit: 30 s).
    leeway: float = 60.0

    @property
    def publish_ahead(self) -> float:
        return 2 * self.jwks_max_age + self.refresh_interval

    @property
    def retention(self) -> float:
        return self.longest_token_lifetime + self.leeway


def active(keys: Sequence[K], now: float) -> K | None:
    """The key that signs at ``now``: the newest whose activation has come."""
    started = [key for key in keys if key.activates_at <= now]
    return max(started, key=lambda key: key.generation, default=None)


def _successor(keys: Sequence[K], key: K) -> K | None:
    later = [other for other in keys if other.generation > key.generation]
    return min(later, key=lambda other: other.generation, default=None)


def published(keys: Sequence[K], now: float, policy: RotationPolicy) -> list[K]:
    """Keys the JWKS lists: pending, active, and retired ones still verifying."""
    return [key for key in keys if not is_expired(keys, key, now, policy)]


def is_expired(keys: Sequence[K], key: K, now: float, policy: RotationPolicy) -> bool:
    """Whether no unexpired token can have been signed by ``key``."""
    successor = _successor(keys, key)
    if successor is None or successor.activates_at > now:
        return False
    return successor.activates_at + policy.retention < now


def next_key_due(keys: Sequence[K], now: float, policy: RotationPolicy) -> float | None:
    """The activation time of the key to create now, or None if none is due."""
    if not keys:
        # Nothing was ever signed or published: the first key may sign at once.
        return now
    newest = max(keys, key=lambda key: key.generation)
    if newest.activates_at > now:
        return None
    if now >= newest.activates_at + policy.rotation_period - policy.publish_ahead:
        return now + policy.publish_ahead
    return None
