"""The RateCounter port and the create limit over `limits` (fixed window), on any of its storages:
memory:// in tests, the Table backend (shared/storage/ratelimit.py) shared by all instances."""

from __future__ import annotations

from limits import parse
from limits.storage import Storage

from shared.ports import WindowLimit, WindowUsage


class LimitsRateCounter:
    """The same count as `limits.FixedWindowRateLimiter.hit`, one `incr` on the storage, kept
    here so the response can say how much is left without another read."""

    def __init__(self, storage: Storage, rate: str, scope: str) -> None:
        self._storage = storage
        self._item = parse(rate)
        self._scope = scope
        self.per = self._item.GRANULARITY.name

    def hit(self, who: str) -> WindowUsage:
        key = self._item.key_for(self._scope, who)
        count = self._storage.incr(key, self._item.get_expiry())
        return WindowUsage(self._item.amount, count, self._storage.get_expiry(key))


def window_limit(rate: str) -> WindowLimit:
    """A `limits` rate (`30/minute`) as a fixed window the ticket repository counts in."""
    item = parse(rate)
    return WindowLimit(item.amount, item.get_expiry())
