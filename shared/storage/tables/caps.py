"""The action caps (ActionCaps) in shard rows of the counters table."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime

from azure.data.tables import TableClient

from shared.storage.tables.optimistic import OptimisticRow
from shared.storage.tables.rows import Row


def _share(total: int, shards: int, index: int) -> int:
    return total // shards + (1 if index < total % shards else 0)


def _tag(holder: str) -> str:
    return hashlib.sha256(holder.encode()).hexdigest()[:20]


class TableActionCaps:
    """Hourly and daily caps split into shard rows whose budgets sum to the caps.

    Each shard row holds its day count, its per-hour counts and the holders of its slots,
    and is updated under an ETag, so no shard overshoots its budget and the sum never
    exceeds a cap, with any number of instances. A holder tries the shards in an order
    drawn from its own id (spreading the writers, and leading a retry back to the slot its
    earlier attempt took); holding a slot already takes nothing more. Releasing removes the
    holder and its counts. Holder lists keep the newest MAX_HOLDERS entries of a day, far
    more than any request stays retried.
    """

    MAX_HOLDERS = 800

    def __init__(self, counters: TableClient, per_hour: int, per_day: int, shards: int = 4) -> None:
        self._table, self._per_hour, self._per_day, self._shards = counters, per_hour, per_day, shards
        self._rows: dict[tuple[str, int], OptimisticRow] = {}
        self._lock = threading.Lock()

    def _row(self, day: str, shard: int) -> OptimisticRow:
        with self._lock:
            if (day, shard) not in self._rows:
                self._rows = {k: v for k, v in self._rows.items() if k[0] == day}
                self._rows[(day, shard)] = OptimisticRow(
                    self._table, f"caps-{day}", f"shard-{shard}", trust_cached_decline=False
                )
            return self._rows[(day, shard)]

    def _order(self, holder: str) -> list[int]:
        return sorted(range(self._shards), key=lambda s: hashlib.sha256(f"{holder}/{s}".encode()).digest())

    def try_acquire(self, now: datetime, holder: str) -> str | None:
        day, hour, tag = now.strftime("%Y%m%d"), f"H{now:%H}", _tag(holder)
        reason = "daily_cap_reached"
        for shard in self._order(holder):
            day_budget = _share(self._per_day, self._shards, shard)
            hour_budget = _share(self._per_hour, self._shards, shard)
            held = False

            def take(props: Row, day_budget: int = day_budget, hour_budget: int = hour_budget) -> Row | None:
                nonlocal held
                holders = _holders(props)
                held = any(h.partition(":")[0] == tag for h in holders)
                if held or props.get("Day", 0) >= day_budget or props.get(hour, 0) >= hour_budget:
                    return None
                holders = [*holders, f"{tag}:{hour}"][-self.MAX_HOLDERS :]
                return {
                    **props,
                    "Day": props.get("Day", 0) + 1,
                    hour: props.get(hour, 0) + 1,
                    "Holders": " ".join(holders),
                }

            seen, taken = self._row(day, shard).update(take)
            if taken is not None or held:
                return None
            if seen.get("Day", 0) < day_budget:
                reason = "hourly_cap_reached"
        return reason

    def release(self, taken_at: datetime, holder: str) -> None:
        day, tag = taken_at.strftime("%Y%m%d"), _tag(holder)
        for shard in self._order(holder):

            def give(props: Row) -> Row | None:
                holders = _holders(props)
                mine = next((h for h in holders if h.partition(":")[0] == tag), None)
                if mine is None:
                    return None
                hour = mine.partition(":")[2]
                holders.remove(mine)
                return {
                    **props,
                    "Day": max(0, props.get("Day", 0) - 1),
                    hour: max(0, props.get(hour, 0) - 1),
                    "Holders": " ".join(holders),
                }

            if self._row(day, shard).update(give)[1] is not None:
                return

    def usage(self, now: datetime) -> tuple[int, int]:
        """One query of the day's partition (every shard row in one round trip): agent analytics
        read it on each call."""
        day, hour = now.strftime("%Y%m%d"), f"H{now:%H}"
        rows = list(
            self._table.query_entities(f"PartitionKey eq 'caps-{day}'", select=["RowKey", "Day", hour])
        )
        shards = [r for r in rows if str(r.get("RowKey", "")).startswith("shard-")]
        return sum(int(r.get(hour) or 0) for r in shards), sum(int(r.get("Day") or 0) for r in shards)


def _holders(props: Row) -> list[str]:
    return str(props.get("Holders", "")).split()
