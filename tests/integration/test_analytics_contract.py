"""One contract for every AnalyticsStore: the in-memory fake and the Table adapter on Azurite.
Then what only the Table adapter has: folding into the year's sum rows, its crashes and races.

The Table adapter's reads see folded events only (the sweeper folds every run): the contract
reads through `settled`, which folds first as the sweeper would (the fake folds nothing)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableClient

from shared.domain.analytics import TOMBSTONE_SECONDS
from shared.domain.decision import Thresholds
from shared.domain.tally import Tallies
from shared.ports import AnalyticsStore
from shared.services.recompute import recompute
from shared.storage.clients import StorageClients, round_trips
from shared.storage.memory import InMemoryAnalytics, InMemoryTicketRepository
from shared.storage.tables.analytics import STATE, TableAnalytics, partition, prop, shard

D1, D2, D3 = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=TOMBSTONE_SECONDS + 1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def table(azurite_conn: str) -> Iterator[TableClient]:
    client = StorageClients(azurite_conn).table(f"a{uuid.uuid4().hex[:20]}")
    client.create_table()
    try:
        yield client
    finally:
        client.delete_table()


@pytest.fixture(params=["memory", "table"])
def store(request: pytest.FixtureRequest) -> Iterator[AnalyticsStore]:
    if request.param == "memory":
        yield InMemoryAnalytics()
        return
    yield TableAnalytics(request.getfixturevalue("table"), Clock())


def settle(store: AnalyticsStore) -> int:
    folded = 0
    while n := store.fold(1000):
        folded += n
    return folded


def settled(store: AnalyticsStore, since: date, until: date) -> Tallies:
    """What a read returns once the sweeper folded what was recorded."""
    settle(store)
    return store.read(since, until)


def tallies(**days: dict[str, int]) -> Tallies:
    by = {"d1": D1, "d2": D2, "d3": D3}
    return {by[k]: Counter(v) for k, v in days.items()}


def test_a_record_is_read_back_by_day(store: AnalyticsStore) -> None:
    store.record("1-1", tallies(d1={"tickets": 1}, d2={"resolutions": 1, "resolutions:AUTO_RESOLVE": 1}))
    store.record("2-1", tallies(d2={"tickets": 1, "confidence_milli": 912}))
    assert settled(store, D1, D3) == tallies(
        d1={"tickets": 1},
        d2={"tickets": 1, "resolutions": 1, "resolutions:AUTO_RESOLVE": 1, "confidence_milli": 912},
    )
    assert settled(store, D2, D2) == tallies(
        d2={"tickets": 1, "resolutions": 1, "resolutions:AUTO_RESOLVE": 1, "confidence_milli": 912}
    )
    assert settled(store, D3, D3) == {}
    assert settled(store, D2, D1) == {}


def test_recording_an_id_again_changes_nothing(store: AnalyticsStore) -> None:
    # An id names one event, whose deltas are a function of its history entry: always the same.
    event = tallies(d1={"confirmed": 1}, d3={"closed": 1})
    for _ in range(3):
        store.record("5-3", event)
    store.record("5-3", tallies(d1={"confirmed": 7}))  # the day already recorded: still nothing
    assert settled(store, D1, D3) == event


def test_negative_deltas_move_figures_down_and_zeros_vanish(store: AnalyticsStore) -> None:
    store.record("7-2", tallies(d1={"confirmed": 1, "satisfaction_sum": 5, "satisfaction_count": 1}))
    store.record(
        "7-3", tallies(d1={"confirmed": -1, "failed": 1, "satisfaction_sum": -5, "satisfaction_count": -1})
    )
    assert settled(store, D1, D1) == tallies(d1={"failed": 1})
    store.record("7-4", tallies(d1={"failed": -1}))
    assert settled(store, D1, D1) == {}


def test_empty_deltas_write_nothing_and_do_not_use_up_the_id(store: AnalyticsStore) -> None:
    store.record("9-2", {})
    store.record("9-2", tallies(d1={"shadowed": 0}))
    store.record("9-2", tallies(d1={"shadowed": 1}))
    assert settled(store, D1, D1) == tallies(d1={"shadowed": 1})


def test_concurrent_records_of_distinct_and_identical_ids_count_each_id_once(store: AnalyticsStore) -> None:
    ids = [f"{n}-2" for n in range(40)] * 3  # every id three times, all at once

    def record(event: str) -> None:
        store.record(event, tallies(d2={"actions:AUTO_RESOLVE": 1, "confidence_milli": 900}))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(record, ids))
    assert settled(store, D2, D2) == tallies(d2={"actions:AUTO_RESOLVE": 40, "confidence_milli": 36000})


def test_fold_counts_each_event_once_and_reports_how_many(store: AnalyticsStore) -> None:
    for n in range(12):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}, d3={"closed": 1, "resolution_seconds": 60}))
    folded = settle(store)
    assert folded in (0, 24)  # the fake has nothing to fold
    assert store.read(D1, D3) == tallies(d1={"tickets": 12}, d3={"closed": 12, "resolution_seconds": 720})
    assert store.fold(1000) == 0
    assert store.read(D1, D3) == tallies(d1={"tickets": 12}, d3={"closed": 12, "resolution_seconds": 720})


def test_recording_an_id_again_after_its_fold_changes_nothing(store: AnalyticsStore) -> None:
    store.record("5-3", tallies(d1={"confirmed": 1}))
    settle(store)
    store.record("5-3", tallies(d1={"confirmed": 1}))  # a redelivery after the fold: a tombstone
    assert settled(store, D1, D3) == tallies(d1={"confirmed": 1})


def test_concurrent_records_of_one_id_count_once(store: AnalyticsStore) -> None:
    start = threading.Barrier(8)

    def record(_: int) -> None:
        start.wait()
        store.record("77-2", tallies(d2={"decisions": 1}))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(record, range(8)))
    assert settled(store, D1, D3) == tallies(d2={"decisions": 1})


# --- the Table adapter only


def rows(table: TableClient) -> list[dict[str, object]]:
    return [dict(e, PartitionKey=e["PartitionKey"], RowKey=e["RowKey"]) for e in table.list_entities()]


def journal(table: TableClient) -> list[dict[str, object]]:
    return [r for r in rows(table) if "RecordedUs" in r]


def tombstones(table: TableClient) -> list[dict[str, object]]:
    return [r for r in rows(table) if str(r["RowKey"]).startswith("e-") and "RecordedUs" not in r]


def pending(table: TableClient) -> list[dict[str, object]]:
    return [r for r in rows(table) if r["RowKey"] == STATE and r.get("Pending")]


def test_an_event_is_one_insert_per_day_keyed_by_day_shard_and_id(table: TableClient) -> None:
    store = TableAnalytics(table, Clock())
    sent = round_trips()
    store.record("42-3", tallies(d1={"resolutions:AUTO_RESOLVE": 1}, d2={"rolled_back": 1}))
    assert round_trips() - sent == 2
    keys = sorted((r["PartitionKey"], r["RowKey"]) for r in rows(table))
    assert keys == [(partition(D1, shard("42-3")), "e-42-3"), (partition(D2, shard("42-3")), "e-42-3")]
    [first] = [r for r in rows(table) if r["PartitionKey"] == partition(D1, shard("42-3"))]
    assert prop("resolutions:AUTO_RESOLVE") in first
    sent = round_trips()
    store.record("42-3", tallies(d1={"resolutions:AUTO_RESOLVE": 1}, d2={"rolled_back": 1}))
    assert round_trips() - sent == 2  # two inserts that conflict, no read


def test_a_retry_after_a_partial_record_completes_the_other_days(table: TableClient) -> None:
    store = TableAnalytics(table, Clock())
    event = tallies(d1={"confirmed": 1}, d3={"rolled_back": 1})
    store.record("8-4", {D1: event[D1]})  # the insert of the other day failed (an outage)
    store.record("8-4", event)
    assert settled(store, D1, D3) == event


def test_an_unmappable_counter_name_is_refused_before_anything_is_written(table: TableClient) -> None:
    store = TableAnalytics(table, Clock())
    with pytest.raises(ValueError):
        store.record("1-2", tallies(d1={"tickets": 1}, d2={"bad name!": 1}))
    assert rows(table) == []


def test_reads_see_folded_events_only_and_say_as_of_when(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    assert store.folded_at() is None
    store.record("1-1", tallies(d2={"tickets": 1}))
    assert store.read(D1, D3) == {}  # not folded yet: the sweeper's next run
    assert store.fold(1000) == 1
    assert store.folded_at() == NOW
    assert store.read(D1, D3) == tallies(d2={"tickets": 1})
    clock.now = NOW + timedelta(minutes=1)
    for n in range(2, 5):
        store.record(f"{n}-1", tallies(d2={"tickets": 1}))
    assert store.fold(2) == 2  # the limit holds; a run that left rows behind moves no as-of
    assert store.folded_at() == NOW
    assert store.fold(1000) == 1
    assert store.folded_at() == clock.now


def test_fold_leaves_tombstones_that_keep_an_id_once_until_they_expire(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    for n in range(150):
        store.record(f"{n}-1", tallies(d2={"tickets": 1}))
    assert store.fold(100) == 100  # the limit holds
    assert store.fold(1000) == 50
    assert journal(table) == [] and len(tombstones(table)) == 150 and pending(table) == []
    sums = [r for r in rows(table) if r["PartitionKey"] == f"sums-{D2:%Y}"]
    assert [r["RowKey"] for r in sums] == [f"{D2:%Y%m%d}"]  # one row per day, every shard in it
    assert {k for k in sums[0] if k.startswith("Applied")} == {
        f"Applied{shard(f'{n}-1')}" for n in range(150)
    }
    store.record("7-1", tallies(d2={"tickets": 1}))  # a redelivery: the tombstone conflicts
    assert settled(store, D2, D2) == tallies(d2={"tickets": 150})
    clock.now = LATER  # past TOMBSTONE_SECONDS (> REPLAY_SECONDS): tombstones go
    assert store.fold(1000) == 0
    assert tombstones(table) == []
    assert not [r for r in rows(table) if str(r["RowKey"]).startswith("b-")]  # markers too
    assert store.read(D2, D2) == tallies(d2={"tickets": 150})
    store.record("999-1", tallies(d2={"tickets": 1}))  # new ids still count, in the next batch
    assert settled(store, D2, D2) == tallies(d2={"tickets": 151})


def test_a_read_is_one_round_trip_per_year_whatever_the_events(table: TableClient) -> None:
    store = TableAnalytics(table, Clock())
    first = date(2025, 1, 1)
    for n in range(366):  # every day of 2025 and one of 2026
        store.record(f"{n}-1", {first + timedelta(days=n): Counter(tickets=1)})
    for n in range(300):  # and many events on one day
        store.record(f"busy-{n}", {date(2025, 6, 1): Counter(closed=1)})
    settle(store)

    def trips(since: date, until: date) -> tuple[int, Tallies]:
        sent = round_trips()
        found = store.read(since, until)
        return round_trips() - sent, found

    n, found = trips(date(2025, 5, 15), date(2025, 6, 13))  # 30 days
    assert n == 1 and sum(t["tickets"] for t in found.values()) == 30
    assert found[date(2025, 6, 1)] == Counter(tickets=1, closed=300)
    n, found = trips(date(2025, 1, 1), date(2025, 12, 31))  # a whole year: 365 rows, one page
    assert n == 1 and sum(t["tickets"] for t in found.values()) == 365
    n, found = trips(date(2025, 12, 20), date(2026, 1, 18))  # across the new year: two partitions
    assert n == 2 and sum(t["tickets"] for t in found.values()) == 13
    assert found[date(2026, 1, 1)] == Counter(tickets=1)


def test_a_fold_that_crashes_after_its_transaction_is_completed_by_the_next(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    for n in range(20):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}))
    crashing = TableAnalytics(table, clock)

    def crash(*_: object) -> None:
        raise RuntimeError("the host stopped")

    crashing._apply = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.fold(1000)
    assert pending(table)  # step a committed: rows tombstoned, the batch pending
    assert store.read(D1, D1) == {}
    store.record("3-1", tallies(d1={"tickets": 1}))  # a redelivery meanwhile: a tombstone or pending
    assert settled(store, D1, D1) == tallies(d1={"tickets": 20})
    assert pending(table) == [] and journal(table) == []


def test_a_fold_that_crashes_after_applying_never_applies_twice(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    for n in range(20):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}))
    crashing = TableAnalytics(table, clock)

    def crash(*_: object) -> None:
        raise RuntimeError("the host stopped")

    crashing._clear = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.fold(1000)
    applied = store.read(D1, D1)[D1]["tickets"]  # the partitions it reached before it stopped
    assert pending(table) and 0 < applied <= 20  # applied, not cleared
    assert {r["PartitionKey"] for r in pending(table)} <= {r["PartitionKey"] for r in tombstones(table)}
    assert settle(store) == 20 - applied  # completes the pending batches: Applied says they are in
    assert pending(table) == []
    assert store.read(D1, D1) == tallies(d1={"tickets": 20})
    for n in range(20, 30):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}))
    assert settled(store, D1, D1) == tallies(d1={"tickets": 30})  # the next batch numbers apply


def test_fold_racing_fold_counts_every_event_once(table: TableClient) -> None:
    clock = Clock()
    stores = [TableAnalytics(table, clock) for _ in range(4)]
    for n in range(200):
        stores[0].record(f"{n}-2", tallies(d1={"confirmed": 1}, d3={"decisions": 1}))
    start = threading.Barrier(4)

    def fold(s: TableAnalytics) -> int:
        start.wait()
        done = 0
        while True:
            n = s.fold(120)
            done += n
            if n == 0 and not journal(table) and not pending(table):
                return done

    with ThreadPoolExecutor(4) as pool:
        folded = sum(pool.map(fold, stores))
    assert folded == 400  # each journal row folded by exactly one of them
    assert stores[0].read(D1, D3) == tallies(d1={"confirmed": 200}, d3={"decisions": 200})


def test_fold_racing_records_loses_nothing_and_counts_nothing_twice(table: TableClient) -> None:
    clock = Clock()
    writer, folder = TableAnalytics(table, clock), TableAnalytics(table, clock)
    stop = threading.Event()

    def keep_folding() -> None:
        while not stop.is_set():
            folder.fold(50)

    background = threading.Thread(target=keep_folding)
    background.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            ids = [f"{n}-1" for n in range(200)] * 2  # each id twice: before and after its fold
            list(pool.map(lambda e: writer.record(e, tallies(d2={"tickets": 1})), ids))
    finally:
        stop.set()
        background.join()
    assert settled(writer, D1, D3) == tallies(d2={"tickets": 200})


def test_two_folds_from_the_same_state_cannot_both_commit(table: TableClient) -> None:
    """Azurite ignores If-Match inside a transaction: the batch marker's insert is the guard. The
    racer read the state and queried the rows before the other fold committed them."""
    clock = Clock()
    store = TableAnalytics(table, clock)
    same = [f"{n}-1" for n in range(300) if shard(f"{n}-1") == 0][:6]
    for event in same[:3]:
        store.record(event, tallies(d1={"tickets": 1}))
    store.fold(1000)
    pk = partition(D1, 0)
    for event in same[3:]:
        store.record(event, tallies(d1={"tickets": 1}))
    stale = table.get_entity(pk, STATE)
    seen = list(table.query_entities("PartitionKey eq @pk and RecordedUs ge 0L", parameters={"pk": pk}))
    assert len(seen) == 3

    class Stale:  # the rows as the racer's query found them
        def __getattr__(self, name: str) -> object:
            return getattr(table, name)

        def query_entities(self, *_: object, **__: object) -> list[Any]:
            return seen

    racer = TableAnalytics(Stale(), clock)  # type: ignore[arg-type]
    assert store._batch(pk, stale, 0, 98) == (3, 3, False)
    assert racer._batch(pk, stale, 0, 98) == (-1, 0, False)
    assert settled(store, D1, D1) == tallies(d1={"tickets": 6})


def test_recompute_compares_what_is_recorded_folded_or_not(table: TableClient) -> None:
    """`manage analytics recompute` right after the hosts stop: what the sweeper had not folded yet
    is compared too (recompute folds first), so a dry run finds exactly what was recorded."""
    store = TableAnalytics(table, Clock())
    store.record("stray-1", tallies(d2={"tickets": 1}))  # no ticket behind it: a real difference
    report = recompute(InMemoryTicketRepository(), store, Thresholds(), Clock(), dry_run=True)
    assert [(d.day, d.counter, d.stored, d.recomputed) for d in report.differences] == [(D2, "tickets", 1, 0)]
    assert journal(table) == []


def test_expired_tombstones_go_in_full_batches_whatever_the_limit_left(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    for n in range(300):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}))
    settle(store)
    clock.now = LATER
    sent = round_trips()
    assert store.fold(1000) == 0
    assert tombstones(table) == []
    assert round_trips() - sent < 300 // 10  # whole transactions, not a row at a time
    assert store.read(D1, D1) == tallies(d1={"tickets": 300})
