"""The analytics tallies (AnalyticsStore) in the analytics table: a journal, folded into one sum
partition per year that a read queries once.

The journal: partitions `d{YYYYMMDD}-{shard}`, a UTC day split in SHARDS by a stable hash of the
event id, so that concurrent writers of one day spread over several partitions. In each:

- journal rows, RowKey `e-{event id}`: one event's counters for that day, inserted once. Recording
  is an insert and nothing else: a conflict means the event was recorded already (exactly once by
  key, no read, no contention between writers). An event touching several days (a feedback on an
  earlier day's resolution) is one insert per day; each is once by its own key;
- tombstones, the same keys once folded: no counters, `FoldedAt`. Recording a folded id again
  still conflicts, so a fold needs no delay. A tombstone is deleted once older than
  TOMBSTONE_SECONDS (longer than REPLAY_SECONDS, the age up to which an event is recorded again:
  shared/domain/analytics.py, shared/services/analytics.py);
- the state row `state`: `Batch`, the partition's last fold batch number, and while a batch is
  between its two steps, `Pending` (its number) and its summed counters;
- batch markers `b-{number}`: the guard Azurite honours (it ignores If-Match inside a transaction,
  the README's storage design says; Azure honours both): two folds starting from the same state
  cannot both commit their batch. Deleted with the tombstones.

The sums: ONE partition per year, `sums-{YYYY}`, RowKey `{YYYYMMDD}`, a row per day with the day's
folded counters and, per shard s, `Applied{s}`: the number of the last batch of that day's shard
partition added to it. Plus the row `swept` in `sums-meta`: when the last complete fold run started.

`fold`, per journal partition P, exactly once across the two partitions:
  a. one transaction in P: the state row under its ETag (Batch n, Pending n, the batch's counters),
     marker `b-{n}` created, each folded journal row replaced by its tombstone, expired tombstones
     and markers deleted (100 operations at most). A record racing it lands before its query
     (folded now) or after (left for the next batch); a fold racing it loses (ETag, marker);
  b. the day's sum row, under its ETag: the batch is added only if `Applied{s}` < n, and
     `Applied{s}` = n set with it. A lost ETag race reads again and decides again;
  c. Pending cleared in P (ETag).
A fold that crashes after a leaves Pending, which the next fold finds and completes from b; after b,
Applied{s} says the batch is in, so it is never added twice.

`read(since, until)`: one query per year the window touches (one partition, at most 366 rows: one
page, one round trip on Azure, which ends a page at 1,000 rows or at a partition boundary), years in
parallel. It returns folded figures only: they lag the records by at most one sweep interval.

Counter names map to property names `c_{name}` with `:` written `__` (a property name is letters,
digits and `_`); values are Int64.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, TableTransactionError, UpdateMode

from shared.domain.analytics import TOMBSTONE_SECONDS, clean
from shared.domain.tally import Tallies, Tally
from shared.storage.lean import LeanTableClient
from shared.storage.tables.rows import Row

log = logging.getLogger("resolvemeq.analytics")

SHARDS = 8
JOURNAL = "e-"
STATE = "state"
MARKER = "b-"
SUMS = "sums-"
META, SWEPT = "sums-meta", "swept"
# Journal rows and expired tombstones per transaction: with the state row and the marker, the 100
# operations a transaction holds.
FOLD_BATCH = 98
POOL = 4  # partitions folded at once
PAGE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^[a-z][a-z_]*(:[A-Za-z0-9_]+)?$")
_PREFIX = "c_"
RECORDED = "RecordedUs"
FOLDED = "FoldedAt"  # microseconds since the epoch, on tombstones and markers
SWEPT_AT = "SweptAt"  # not FoldedAt: the swept row is no tombstone to delete
BATCH, PENDING, APPLIED = "Batch", "Pending", "Applied"
_LOST = (TableTransactionError, ResourceExistsError, ResourceNotFoundError, HttpResponseError)


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


def _int(entity: Any, name: str) -> int:
    value = entity.get(name) if entity is not None else None
    return int(getattr(value, "value", value) or 0)


def _lost(exc: Exception) -> bool:
    """A race lost (a conflict, a precondition, a row gone), as opposed to an outage."""
    return not isinstance(exc, HttpResponseError) or exc.status_code in (404, 409, 412)


def _if_match(entity: Any) -> dict[str, Any]:
    return {
        "mode": UpdateMode.REPLACE,
        "etag": entity.metadata["etag"],
        "match_condition": MatchConditions.IfNotModified,
    }


def _marker(batch: int) -> str:
    return f"{MARKER}{batch:012d}"


class TableAnalytics:
    def __init__(
        self,
        table: LeanTableClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        keep: timedelta = timedelta(seconds=TOMBSTONE_SECONDS),
    ) -> None:
        self._table, self._clock, self._keep = table, clock, keep
        self.page = PAGE

    def record(self, event_id: str, deltas: Tallies) -> None:
        """One insert per day the event touches (almost always one); a conflict is this event
        recorded (or recorded and folded) before."""
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

    # Reads: the sums only.

    def read(self, since: date, until: date) -> Tallies:
        """One query per year of the window (at most 366 rows of one partition: one page), the
        years in parallel."""
        if since > until:
            return {}
        years = [
            (max(since, date(y, 1, 1)), min(until, date(y, 12, 31)))
            for y in range(since.year, until.year + 1)
        ]
        if len(years) == 1:
            parts = [self._year(*years[0])]
        else:
            with ThreadPoolExecutor(min(len(years), POOL)) as pool:
                parts = list(pool.map(lambda w: self._year(*w), years))
        days: dict[date, Tally] = {}
        for part in parts:
            days.update(part)
        return clean(days)

    def _year(self, first: date, last: date) -> dict[date, Tally]:
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey le @last"
        params = {"pk": f"{SUMS}{first:%Y}", "first": f"{first:%Y%m%d}", "last": f"{last:%Y%m%d}"}
        found: dict[date, Tally] = {}
        for entity in self._table.query_rows(query, parameters=params, results_per_page=self.page):
            found[datetime.strptime(entity["RowKey"], "%Y%m%d").date()] = _counters(entity)
        return found

    def folded_at(self) -> datetime | None:
        """When the last fold run that left nothing behind started: every event recorded before
        it is in what `read` returns. None before the first."""
        try:
            entity = self._table.get_entity(META, SWEPT)
        except ResourceNotFoundError:
            return None
        return EPOCH + timedelta(microseconds=_int(entity, SWEPT_AT))

    # Folding.

    def fold(self, limit: int) -> int:
        """Fold up to `limit` journal rows (and complete the batches a crash left pending, delete
        the expired tombstones): one query finds the partitions with work, which are folded
        POOL at a time. How many journal rows were folded."""
        if limit <= 0:
            return 0
        started = self._clock()
        cutoff = _micros(started - self._keep)
        query = f"{RECORDED} ge 0L or {PENDING} gt 0L or {FOLDED} lt {cutoff}L"
        work: Counter[str] = Counter()
        complete = True
        rows = self._table.query_entities(query, select=["PartitionKey", RECORDED], results_per_page=PAGE)
        for taken, entity in enumerate(rows, start=1):
            work[entity["PartitionKey"]] += 1
            if taken >= limit:
                complete = False
                break
        if not work:
            self._swept(started)
            return 0
        with ThreadPoolExecutor(min(len(work), POOL)) as pool:
            results = list(pool.map(lambda pk: self._fold_partition(pk, work[pk], cutoff), work))
        if complete and all(done for _, done in results):
            self._swept(started)
        return sum(n for n, _ in results)

    def _swept(self, at: datetime) -> None:
        self._table.upsert_entity(
            {"PartitionKey": META, "RowKey": SWEPT, SWEPT_AT: (_micros(at), EdmType.INT64)},
            mode=UpdateMode.REPLACE,
        )

    def _fold_partition(self, pk: str, budget: int, cutoff: int) -> tuple[int, bool]:
        """Batches of P until `budget` rows (journal rows, expired tombstones) are handled or
        nothing is left: (journal rows folded, whether every batch committed). A batch lost to a
        racing fold is that fold's to finish."""
        folded = handled = 0
        try:
            while True:
                state = self._state(pk)
                if _int(state, PENDING):
                    self._finish(pk, state)
                    continue
                n, taken, more = self._batch(pk, state, cutoff, max(1, min(FOLD_BATCH, budget - handled)))
                if n < 0:
                    return folded, False
                folded, handled = folded + n, handled + taken
                if not more or handled >= budget:
                    return folded, True
        except _LOST as exc:
            if not _lost(exc):
                raise
            log.info("analytics fold of %s lost a race (%s); left for the next run", pk, type(exc).__name__)
            return folded, False

    def _state(self, pk: str) -> Any:
        try:
            return self._table.get_entity(pk, STATE)
        except ResourceNotFoundError:
            return None

    def _batch(self, pk: str, state: Any, cutoff: int, size: int) -> tuple[int, int, bool]:
        """Step a, then b and c: (journal rows folded, rows handled, whether more may be left);
        -1 folded when a racing fold committed first. The state row is read before the query, so a fold that
        committed after that read makes this one's state update (ETag) or marker insert fail."""
        query = f"PartitionKey eq @pk and ({RECORDED} ge 0L or {FOLDED} lt {cutoff}L)"
        found: list[Any] = []
        for entity in self._table.query_entities(query, parameters={"pk": pk}, results_per_page=size):
            found.append(entity)
            if len(found) >= size:
                break
        journal = [e for e in found if e.get(RECORDED) is not None]
        expired = [e for e in found if e.get(RECORDED) is None]
        more = len(found) >= size
        operations: list[Any] = [("delete", {"PartitionKey": pk, "RowKey": e["RowKey"]}) for e in expired]
        if not journal:
            if operations:
                self._table.submit_transaction(operations)
            return 0, len(found), more
        n = _int(state, BATCH) + 1
        total: Tally = Counter()
        for entity in journal:
            total.update(_counters(entity))
        pending = _row(pk, STATE, total)
        pending[BATCH] = (n, EdmType.INT64)
        pending[PENDING] = (n, EdmType.INT64)
        now = (_micros(self._clock()), EdmType.INT64)
        operations.append(("create", pending) if state is None else ("update", pending, _if_match(state)))
        operations.append(("create", {"PartitionKey": pk, "RowKey": _marker(n), FOLDED: now}))
        for entity in journal:
            tombstone = {"PartitionKey": pk, "RowKey": entity["RowKey"], FOLDED: now}
            operations.append(("update", tombstone, _if_match(entity)))
        try:
            self._table.submit_transaction(operations)
        except _LOST as exc:
            if not _lost(exc):
                raise
            log.info("analytics fold of %s lost a race (%s); left to the winner", pk, type(exc).__name__)
            return -1, 0, False
        self._apply(pk, n, total)
        self._clear(pk, n)
        return len(journal), len(found), more

    def _finish(self, pk: str, state: Any) -> None:
        """Steps b and c of the batch pending in `state` (if it still is)."""
        n = _int(state, PENDING)
        if not n:
            return
        self._apply(pk, n, _counters(state))
        self._clear(pk, n)

    def _apply(self, pk: str, n: int, delta: Tally) -> None:
        """Step b: batch n of P into its day's sum row, unless it is in already."""
        day, shard_no = day_of_partition(pk), int(pk.rsplit("-", 1)[1])
        applied = f"{APPLIED}{shard_no}"
        sums, rk = f"{SUMS}{day:%Y}", f"{day:%Y%m%d}"
        while True:
            try:
                current = self._table.get_entity(sums, rk)
            except ResourceNotFoundError:
                current = None
            if current is not None and _int(current, applied) >= n:
                return
            total: Tally = _counters(current) if current is not None else Counter()
            total.update(delta)
            row = _row(sums, rk, total)
            for name in current or {}:
                if name.startswith(APPLIED):
                    row[name] = (_int(current, name), EdmType.INT64)
            row[applied] = (n, EdmType.INT64)
            try:
                if current is None:
                    self._table.create_entity(row)
                else:
                    self._table.update_entity(row, **_if_match(current))
                return
            except (ResourceExistsError, HttpResponseError) as exc:
                if not _lost(exc):
                    raise  # an outage: the batch stays pending for the next run

    def _clear(self, pk: str, n: int) -> None:
        """Step c: batch n is no longer pending in P."""
        while True:
            state = self._state(pk)
            if _int(state, PENDING) != n:
                return  # a racing fold cleared it
            row = {"PartitionKey": pk, "RowKey": STATE, BATCH: (_int(state, BATCH), EdmType.INT64)}
            try:
                self._table.update_entity(row, **_if_match(state))
                return
            except HttpResponseError as exc:
                if not _lost(exc):
                    raise
