"""Token buckets keyed by who is asking (an API key, a member).

Each key's bucket holds up to `per_minute` tokens and refills at `per_minute / 60` tokens a
second, so a client may burst a whole minute's allowance at once and then goes at the steady
rate. `take(key)` spends a token and answers 0.0, or, when the bucket is empty, spends nothing and
answers how many seconds until the next token (the `Retry-After`).

Time is `time.monotonic` (injectable for tests): a wall clock stepped by NTP must not refill or
drain anybody's bucket. Buckets that have refilled completely are dropped once there are many,
so memory stays bounded by the keys active in the last minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

Clock = Callable[[], float]

PRUNE_AT = 10_000  # buckets kept before the full ones are dropped


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """`per_minute` requests per key and minute (bursts up to that many); 0 switches it off."""

    def __init__(self, per_minute: int, *, clock: Clock | None = None) -> None:
        if per_minute < 0:
            raise ValueError("a rate limit is a number of requests per minute, 0 or more")
        self.per_minute = per_minute
        self._clock = clock or time.monotonic
        self._rate = per_minute / 60.0  # tokens per second
        self._buckets: dict[Hashable, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: Hashable) -> float:
        """Spend one token of `key`'s bucket: 0.0 when allowed, else the seconds to wait."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= PRUNE_AT:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + elapsed * self._rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _prune(self, now: float) -> None:
        """Drop the buckets that would be full by now (their keys were idle for a minute)."""
        full = float(self.per_minute)
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.stamp) * self._rate >= full:
                del self._buckets[key]
