"""One contract for every AnalyticsStore: the in-memory fake and the Table adapter on Azurite.
Then what only the Table adapter has: folding into sum rows, and its races."""

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

from shared.domain.analytics import FOLD_AFTER_SECONDS
from shared.domain.tally import Tallies
from shared.ports import AnalyticsStore
from shared.storage.clients import StorageClients, round_trips
from shared.storage.memory import InMemoryAnalytics
from shared.storage.tables.analytics import SHARDS, SUM_ROW, TableAnalytics, partition, prop, shard

D1, D2, D3 = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=FOLD_AFTER_SECONDS + 1)


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


def tallies(**days: dict[str, int]) -> Tallies:
    by = {"d1": D1, "d2": D2, "d3": D3}
    return {by[k]: Counter(v) for k, v in days.items()}


def test_a_record_is_read_back_by_day(store: AnalyticsStore) -> None:
    store.record("1-1", tallies(d1={"tickets": 1}, d2={"resolutions": 1, "resolutions:AUTO_RESOLVE": 1}))
    store.record("2-1", tallies(d2={"tickets": 1, "confidence_milli": 912}))
    assert store.read(D1, D3) == tallies(
        d1={"tickets": 1},
        d2={"tickets": 1, "resolutions": 1, "resolutions:AUTO_RESOLVE": 1, "confidence_milli": 912},
    )
    assert store.read(D2, D2) == tallies(
        d2={"tickets": 1, "resolutions": 1, "resolutions:AUTO_RESOLVE": 1, "confidence_milli": 912}
    )
    assert store.read(D3, D3) == {}
    assert store.read(D2, D1) == {}


def test_recording_an_id_again_changes_nothing(store: AnalyticsStore) -> None:
    # An id names one event, whose deltas are a function of its history entry: always the same.
    event = tallies(d1={"confirmed": 1}, d3={"closed": 1})
    for _ in range(3):
        store.record("5-3", event)
    store.record("5-3", tallies(d1={"confirmed": 7}))  # the day already recorded: still nothing
    assert store.read(D1, D3) == event


def test_negative_deltas_move_figures_down_and_zeros_vanish(store: AnalyticsStore) -> None:
    store.record("7-2", tallies(d1={"confirmed": 1, "satisfaction_sum": 5, "satisfaction_count": 1}))
    store.record(
        "7-3", tallies(d1={"confirmed": -1, "failed": 1, "satisfaction_sum": -5, "satisfaction_count": -1})
    )
    assert store.read(D1, D1) == tallies(d1={"failed": 1})
    store.record("7-4", tallies(d1={"failed": -1}))
    assert store.read(D1, D1) == {}


def test_empty_deltas_write_nothing_and_do_not_use_up_the_id(store: AnalyticsStore) -> None:
    store.record("9-2", {})
    store.record("9-2", tallies(d1={"shadowed": 0}))
    store.record("9-2", tallies(d1={"shadowed": 1}))
    assert store.read(D1, D1) == tallies(d1={"shadowed": 1})


def test_concurrent_records_of_distinct_and_identical_ids_count_each_id_once(store: AnalyticsStore) -> None:
    ids = [f"{n}-2" for n in range(40)] * 3  # every id three times, all at once

    def record(event: str) -> None:
        store.record(event, tallies(d2={"actions:AUTO_RESOLVE": 1, "confidence_milli": 900}))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(record, ids))
    assert store.read(D2, D2) == tallies(d2={"actions:AUTO_RESOLVE": 40, "confidence_milli": 36000})


def test_fold_keeps_every_figure_and_reports_how_many(store: AnalyticsStore) -> None:
    for n in range(12):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}, d3={"closed": 1, "resolution_seconds": 60}))
    before = store.read(D1, D3)
    if isinstance(store, TableAnalytics):
        store._clock.now = LATER  # type: ignore[attr-defined]
    folded = store.fold(1000)
    assert store.read(D1, D3) == before
    assert folded in (0, 24)  # the fake has nothing to fold


# --- the Table adapter only


def rows(table: TableClient) -> list[dict[str, object]]:
    return [dict(e, PartitionKey=e["PartitionKey"], RowKey=e["RowKey"]) for e in table.list_entities()]


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
    assert store.read(D1, D3) == event


def test_an_unmappable_counter_name_is_refused_before_anything_is_written(table: TableClient) -> None:
    store = TableAnalytics(table, Clock())
    with pytest.raises(ValueError):
        store.record("1-2", tallies(d1={"tickets": 1}, d2={"bad name!": 1}))
    assert rows(table) == []


def test_fold_moves_journal_rows_into_sum_rows_and_reads_stay_exact(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    for n in range(150):
        store.record(f"{n}-1", tallies(d2={"tickets": 1}))
    assert store.fold(1000) == 0  # too young: a redelivery may still record them again
    clock.now = LATER
    assert store.fold(100) == 100  # the limit holds
    assert store.read(D2, D2) == tallies(d2={"tickets": 150})
    assert store.fold(1000) == 50
    left = rows(table)
    sums = [r for r in left if r["RowKey"] == SUM_ROW]
    assert len(sums) <= SHARDS and all(
        r["RowKey"] in (SUM_ROW, "f-000000000001", "f-000000000002") for r in left
    )
    assert len(left) == 2 * len(sums)  # each partition: its sum and the marker of its last fold
    assert store.read(D2, D2) == tallies(d2={"tickets": 150})
    store.record("7-1", tallies(d2={"tickets": 1}))  # a young re-record: its row was folded...
    # ...which the callers never do (REPLAY_SECONDS < FOLD_AFTER_SECONDS); a new id counts:
    store.record("999-1", tallies(d2={"tickets": 1}))
    assert store.read(D2, D2) == tallies(d2={"tickets": 152})


def test_a_read_costs_the_same_round_trips_whatever_was_folded(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    for n in range(300):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}, d2={"closed": 1}))
    clock.now = LATER
    while store.fold(500):
        pass
    sent = round_trips()
    assert store.read(D1, D3) == tallies(d1={"tickets": 300}, d2={"closed": 300})
    assert round_trips() - sent == 1  # at most 2 x 8 sum rows: one page


def test_fold_racing_fold_counts_every_event_once(table: TableClient) -> None:
    clock = Clock()
    stores = [TableAnalytics(table, clock) for _ in range(4)]
    for n in range(200):
        stores[0].record(f"{n}-2", tallies(d1={"confirmed": 1}, d3={"decisions": 1}))
    clock.now = LATER
    start = threading.Barrier(4)

    def fold(s: TableAnalytics) -> int:
        start.wait()
        done = 0
        while True:
            n = s.fold(120)
            done += n
            if n == 0 and not [r for r in rows(table) if r["RowKey"].startswith("e-")]:
                return done

    with ThreadPoolExecutor(4) as pool:
        folded = sum(pool.map(fold, stores))
    assert folded == 400  # each journal row folded by exactly one of them
    assert stores[0].read(D1, D3) == tallies(d1={"confirmed": 200}, d3={"decisions": 200})


def test_fold_racing_records_loses_nothing_and_counts_nothing_twice(table: TableClient) -> None:
    clock = Clock()
    writer, folder = TableAnalytics(table, clock), TableAnalytics(table, clock, fold_after=timedelta(0))
    stop = threading.Event()

    def keep_folding() -> None:
        while not stop.is_set():
            folder.fold(50)

    background = threading.Thread(target=keep_folding)
    background.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: writer.record(f"{n}-1", tallies(d2={"tickets": 1})), range(200)))
    finally:
        stop.set()
        background.join()
    while folder.fold(500):
        pass
    assert writer.read(D1, D3) == tallies(d2={"tickets": 200})


def test_a_lost_fold_transaction_leaves_the_rows_for_the_next_run(table: TableClient) -> None:
    clock = Clock()
    store = TableAnalytics(table, clock)
    for n in range(5):
        store.record(f"{n}-1", tallies(d1={"tickets": 1}))
    clock.now = LATER
    journal = [r for r in table.list_entities()]
    pk = journal[0]["PartitionKey"]
    mine = [r for r in journal if r["PartitionKey"] == pk]
    table.delete_entity(pk, mine[0]["RowKey"])  # another fold got there first (its sum not shown)
    assert store._fold(pk, mine) == 0  # the transaction failed as a whole
    assert {r["RowKey"] for r in table.list_entities() if r["PartitionKey"] == pk} == {
        r["RowKey"] for r in mine[1:]
    }


def test_two_folds_from_the_same_sum_cannot_both_commit_even_on_other_rows(table: TableClient) -> None:
    """Azurite ignores If-Match inside a transaction: the fold marker's insert is the guard."""
    clock = Clock()
    store = TableAnalytics(table, clock)
    same = [f"{n}-1" for n in range(200) if shard(f"{n}-1") == 0][:6]
    for event in same:
        store.record(event, tallies(d1={"tickets": 1}))
    pk = partition(D1, 0)
    journal = sorted((e for e in table.list_entities() if e["PartitionKey"] == pk), key=lambda e: e["RowKey"])
    assert store._fold(pk, journal[:3]) == 3
    stale = table.get_entity(pk, SUM_ROW)
    assert store._fold(pk, journal[3:4]) == 1

    class Stale:  # a fold that read the sum before the one above committed
        def __getattr__(self, name: str) -> object:
            return getattr(table, name)

        def get_entity(self, *_: object) -> object:
            return stale

    racer = TableAnalytics(Stale(), clock)  # type: ignore[arg-type]
    assert racer._fold(pk, journal[4:6]) == 0
    assert store.read(D1, D1) == tallies(d1={"tickets": 6})
    assert store._fold(pk, journal[4:6]) == 2
    assert store.read(D1, D1) == tallies(d1={"tickets": 6})


def test_a_read_cut_by_a_page_boundary_while_a_fold_commits_stays_exact(table: TableClient) -> None:
    """Page one reads some journal rows of a partition, a fold then moves them all into the sum,
    page two reads the sum: the cut partition is read again whole, so nothing counts twice."""
    clock = Clock()
    folder = TableAnalytics(table, clock, fold_after=timedelta(0))
    same = [f"{n}-1" for n in range(300) if shard(f"{n}-1") == 3][:10]
    for event in same:
        folder.record(event, tallies(d2={"tickets": 1}))

    folded: list[int] = []

    class Racing:  # the read's query pages, with a fold committing after the first
        def __getattr__(self, name: str) -> object:
            return getattr(table, name)

        def query_entities(self, query: str, **kwargs: Any) -> Any:
            pager = table.query_entities(query, **kwargs)
            if "PartitionKey ge" not in query:
                return pager

            class Pages:
                @staticmethod
                def by_page() -> Iterator[Any]:
                    for n, page in enumerate(pager.by_page()):
                        rows = list(page)
                        yield rows
                        if n == 0 and not folded:
                            folded.append(folder.fold(100))

            return Pages()

    reader = TableAnalytics(Racing(), clock)  # type: ignore[arg-type]
    reader.page = 4
    clock.now = LATER
    assert reader.read(D1, D3) == tallies(d2={"tickets": 10})
    assert folded == [10]
    assert reader.read(D1, D3) == tallies(d2={"tickets": 10})  # and without a race
