"""Rate limits of one process: per API key on the REST API, per member on chat turns.

Both are token buckets kept in this process's memory (`rewards.limits.bucket`): a deployment with
several `rewards serve` processes allows each process its own rate, so the effective limit is the
setting times the number of processes. That is deliberate: the limits are there to stop a runaway
script or a stuck key from starving everyone else, not to meter usage exactly, and a shared
counter would put a database write in front of every request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rewards.limits.bucket import Clock, RateLimiter
from rewards.settings import Settings

__all__ = ["SLOW_DOWN", "RateLimiter", "RateLimits", "retry_after", "slow_down"]

SLOW_DOWN = "You're going a bit fast — try again in {seconds} {unit}."


def retry_after(wait: float) -> int:
    """Whole seconds to tell a client to wait (rounded up, at least 1)."""
    return max(1, math.ceil(wait))


def slow_down(wait: float) -> str:
    """The polite chat sentence for a member who must wait `wait` seconds."""
    seconds = retry_after(wait)
    return SLOW_DOWN.format(seconds=seconds, unit="second" if seconds == 1 else "seconds")


@dataclass
class RateLimits:
    """The process's limiters; `api` keyed by API key id, `chat` by member id."""

    api: RateLimiter
    chat: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> RateLimits:
        return cls(
            api=RateLimiter(settings.api_rate_limit, clock=clock),
            chat=RateLimiter(settings.chat_rate_limit, clock=clock),
        )
