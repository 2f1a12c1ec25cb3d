"""Per-caller throttling with `limits` (fixed window) over a storage shared by all instances."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.storage import Storage

from shared.errors import Throttled
from shared.ports import WindowLimit


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
    """One rate (`50/minute`) applied per (scope, caller).

    The same count as `limits.FixedWindowRateLimiter.hit`, one `incr` on the storage,
    kept here so the response can say how much is left without another read.
    """

    def __init__(self, storage: Storage, rate: str, scope: str) -> None:
        self._storage = storage
        self._item = parse(rate)
        self._scope = scope

    def hit(self, who: str) -> Quota:
        """Count one request; raises Throttled (with Retry-After) past the limit."""
        key = self._item.key_for(self._scope, who)
        count = self._storage.incr(key, self._item.get_expiry())
        quota = Quota(self._item.amount, max(0, self._item.amount - count), self._storage.get_expiry(key))
        if count > self._item.amount:
            raise throttled(quota, "such requests", self._item.GRANULARITY.name)
        return quota


def window_limit(rate: str) -> WindowLimit:
    """A `limits` rate (`30/minute`) as a fixed window the ticket repository counts in."""
    item = parse(rate)
    return WindowLimit(item.amount, item.get_expiry())


def throttled(quota: Quota, what: str, per: str | None = None) -> Throttled:
    retry_after = max(1, math.ceil(quota.reset_at - time.time()))
    window = f" per {per}" if per else ""
    return Throttled(
        f"You can make {quota.limit} {what}{window}; try again in {retry_after} s.",
        retry_after,
        quota.headers(),
    )
