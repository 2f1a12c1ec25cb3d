"""Per-caller throttling over a RateCounter (fixed windows shared by all instances)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from shared.errors import Throttled
from shared.ports import RateCounter


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_at: float

    def headers(self, now: float | None = None) -> dict[str, str]:
        reset = max(0, math.ceil(self.reset_at - (now or time.time())))
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(reset),
        }


class Throttle:
    """One rate (`50/minute`) applied per caller, counted by `counter`."""

    def __init__(self, counter: RateCounter) -> None:
        self._counter = counter

    def hit(self, who: str) -> Quota:
        """Count one request; raises Throttled (with Retry-After) past the limit."""
        usage = self._counter.hit(who)
        quota = Quota(usage.limit, max(0, usage.limit - usage.used), usage.reset_at)
        if usage.used > usage.limit:
            raise throttled(quota, "such requests", self._counter.per)
        return quota


def throttled(quota: Quota, what: str, per: str | None = None) -> Throttled:
    retry_after = max(1, math.ceil(quota.reset_at - time.time()))
    window = f" per {per}" if per else ""
    return Throttled(
        f"You can make {quota.limit} {what}{window}; try again in {retry_after} s.",
        retry_after,
        quota.headers(),
    )
