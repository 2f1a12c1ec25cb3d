"""The analytics tallies (AnalyticsStore) in the analytics table.

Partitions `d{YYYYMMDD}-{shard}`: a UTC day, split in SHARDS by a stable hash of the event id so
that concurrent writers of one day spread over several partitions. In each:

- journal rows, RowKey `e-{event id}`: one event's counters for that day, inserted once. Recording
  is an insert and nothing else: a conflict means the event was recorded already (exactly once by
  key, no read, no contention between writers). An event touching several days (a feedback on an
  earlier day's resolution) is one insert per day; each is once by its own key, so a retry after a
  partial failure completes the others;
- the sum row, RowKey `sum`: the folded journal rows' counters. `fold` moves journal rows into it,
  one partition at a time, with ONE entity-group transaction that replaces the sum row under the
  ETag it read and deletes the journal rows it added (up to 99: a transaction holds 100 operations).
  Two folds of the same rows cannot both commit (the loser's ETag or deletes fail, and it leaves
  them to the next run), and a record racing a fold either lands before the fold's query (folded)
  or after (left in the journal): every event is in the sum or in the journal, never both, never
  neither.

A folded event's journal row is gone, so recording it again would count it again. `fold` therefore
takes only rows recorded more than FOLD_AFTER_SECONDS ago, while events are recorded again only
while younger than REPLAY_SECONDS (shared/domain/analytics.py; shared/services/analytics.py).

`read` is one range query over the days' partitions (sum rows and the journal rows not folded yet,
summed here), paged: it costs days x SHARDS rows plus the events recorded since they were last
folded, whatever the number of tickets.

Counter names map to property names `c_{name}` with `:` written `__` (a property name is letters,
digits and `_`); values are Int64.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, TableClient, TableTransactionError, UpdateMode

from shared.domain.analytics import FOLD_AFTER_SECONDS, clean
from shared.domain.tally import Tallies, Tally
from shared.storage.tables.rows import Row

log = logging.getLogger("resolvemeq.analytics")

SHARDS = 8
SUM_ROW = "sum"
JOURNAL = "e-"
# Journal rows per transaction: with the sum row and the fold markers, the 100 operations a
# transaction holds.
FOLD_BATCH = 97
MARKER = "f-"  # the fold marker: `f-{fold number}`, one per partition
FOLDS = "Folds"  # the sum row's fold number
PAGE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^[a-z][a-z_]*(:[A-Za-z0-9_]+)?$")
_PREFIX = "c_"
RECORDED = "RecordedUs"


def shard(event_id: str) -> int:
    """Stable across processes (unlike hash())."""
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:4], "big") % SHARDS


def partition(day: date, shard_no: int) -> str:
    return f"d{day:%Y%m%d}-{shard_no}"


def day_of_partition(pk: str) -> date:
    return datetime.strptime(pk[1:9], "%Y%m%d").date()


def prop(name: str) -> str:
    """The property a counter is stored in: `actions:AUTO_RESOLVE` -> `c_actions__AUTO_RESOLVE`."""
    if not _NAME.match(name) or "__" in name:
        raise ValueError(f"counter name {name!r} cannot be a Table property")
    return _PREFIX + name.replace(":", "__")


def counter(property_name: str) -> str | None:
    if not property_name.startswith(_PREFIX):
        return None
    return property_name[len(_PREFIX) :].replace("__", ":")


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def _counters(entity: Any) -> Tally:
    found: Tally = Counter()
    for name, value in entity.items():
        key = counter(name)
        if key is not None:
            found[key] += int(getattr(value, "value", value))
    return found


def _row(pk: str, rk: str, counts: Tally) -> Row:
    row: Row = {"PartitionKey": pk, "RowKey": rk}
    for name, n in counts.items():
        if n:
            row[prop(name)] = (int(n), EdmType.INT64)
    return row


class TableAnalytics:
    def __init__(
        self,
        table: TableClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fold_after: timedelta = timedelta(seconds=FOLD_AFTER_SECONDS),
    ) -> None:
        self._table, self._clock, self._fold_after = table, clock, fold_after
        self.page = PAGE

    def record(self, event_id: str, deltas: Tallies) -> None:
        """One insert per day the event touches (almost always one); a conflict is this event
        recorded before."""
        kept = clean(deltas)
        if not kept:
            return
        for counts in kept.values():  # every name checked before anything is written
            for name in counts:
                prop(name)
        at = _micros(self._clock())
        home = shard(event_id)
        for day, counts in sorted(kept.items()):
            row = _row(partition(day, home), JOURNAL + event_id, counts)
            row[RECORDED] = (at, EdmType.INT64)
            try:
                self._table.create_entity(row)
            except ResourceExistsError:
                pass

    def read(self, since: date, until: date) -> Tallies:
        """One query over the partitions of the days (sums and journal rows alike), paged.

        A partition that a page boundary cuts could be read half before and half after a fold
        (its rows counted in the journal and again in the sum): such a partition, and only
        such, is read again whole, between two reads of its sum row that must agree."""
        if since > until:
            return {}
        query = "PartitionKey ge @first and PartitionKey le @last"
        params = {"first": f"d{since:%Y%m%d}", "last": f"d{until:%Y%m%d}~"}
        found: dict[str, list[Any]] = defaultdict(list)
        cut: set[str] = set()
        last = None
        for page in self._table.query_entities(
            query, parameters=params, results_per_page=self.page
        ).by_page():
            for n, entity in enumerate(page):
                pk = entity["PartitionKey"]
                if n == 0 and pk == last:
                    cut.add(pk)
                found[pk].append(entity)
                last = pk
        for pk in cut:
            found[pk] = self._partition(pk)
        days: dict[date, Tally] = defaultdict(Counter)
        for pk, entities in found.items():
            for entity in entities:
                days[day_of_partition(pk)].update(_counters(entity))
        return clean(days)

    def _partition(self, pk: str) -> list[Any]:
        """The rows of one partition as no fold changed them while they were read."""
        for _ in range(3):
            before = self._sum_etag(pk)
            entities = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": pk}))
            if self._sum_etag(pk) == before:
                return entities
        return entities  # folds kept committing meanwhile: the last reading

    def _sum_etag(self, pk: str) -> str | None:
        try:
            return str(self._table.get_entity(pk, SUM_ROW, select=[FOLDS]).metadata["etag"])
        except ResourceNotFoundError:
            return None

    def fold(self, limit: int) -> int:
        """Fold up to `limit` journal rows recorded more than `fold_after` ago into their sums:
        one query, then per partition a read of its sum row and one transaction per 99 rows. A
        transaction that loses a race (another fold) is left for the next run."""
        if limit <= 0:
            return 0
        cutoff = _micros(self._clock() - self._fold_after)
        query = f"RowKey ge @lo and RowKey lt @hi and {RECORDED} lt {cutoff}L"
        params = {"lo": JOURNAL, "hi": "e."}
        found: dict[str, list[Any]] = defaultdict(list)
        pages = self._table.query_entities(query, parameters=params, results_per_page=min(limit, PAGE))
        for taken, entity in enumerate(pages, start=1):
            found[entity["PartitionKey"]].append(entity)
            if taken >= limit:
                break
        folded = 0
        for pk, rows in sorted(found.items()):
            for start in range(0, len(rows), FOLD_BATCH):
                folded += self._fold(pk, rows[start : start + FOLD_BATCH])
        return folded

    def _fold(self, pk: str, rows: list[Any]) -> int:
        """Fold `rows` into the partition's sum row: one transaction that replaces the sum row (fold
        number N+1) under the ETag read, inserts the marker of fold N+1, deletes fold N's marker
        and the rows. The marker insert is the guard Azurite honours too (it ignores If-Match in a
        transaction, as the README's storage design says): two folds from the same sum cannot
        both commit; neither can two that delete the same row."""
        try:
            current = self._table.get_entity(pk, SUM_ROW)
        except ResourceNotFoundError:
            current = None
        total: Tally = _counters(current) if current is not None else Counter()
        for row in rows:
            total.update(_counters(row))
        folds = (
            int(getattr(current.get(FOLDS), "value", current.get(FOLDS)) or 0) if current is not None else 0
        )
        summed = _row(pk, SUM_ROW, total)
        summed[FOLDS] = (folds + 1, EdmType.INT64)
        operations: list[Any] = []
        if current is None:
            operations.append(("create", summed))
        else:
            conditional = {
                "mode": UpdateMode.REPLACE,
                "etag": current.metadata["etag"],
                "match_condition": MatchConditions.IfNotModified,
            }
            operations.append(("update", summed, conditional))
            operations.append(("delete", {"PartitionKey": pk, "RowKey": _marker(folds)}))
        operations.append(("create", {"PartitionKey": pk, "RowKey": _marker(folds + 1)}))
        for row in rows:
            operations.append(("delete", {"PartitionKey": pk, "RowKey": row["RowKey"]}))
        try:
            self._table.submit_transaction(operations)
        except (TableTransactionError, ResourceExistsError, ResourceNotFoundError, HttpResponseError) as exc:
            if isinstance(exc, HttpResponseError) and exc.status_code not in (404, 409, 412):
                raise
            log.info(
                "analytics fold of %s lost a race (%s); left for the next run", pk, exc.__class__.__name__
            )
            return 0
        return len(rows)


def _marker(folds: int) -> str:
    return f"{MARKER}{folds:012d}"
