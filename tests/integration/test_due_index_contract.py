"""One contract for every DueIndex: the in-memory fake and the Table adapter on Azurite; and the
sweeper's storage round trips per run on Azurite, which do not grow with what is scheduled."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.due import DueItem, DueKind, schedule
from shared.ports import DueIndex
from shared.services.agent import Queues
from shared.services.sweep import Sweeper, SweepTimings
from shared.storage.clients import StorageClients, round_trips
from shared.storage.memory import InMemoryDueIndex, InMemoryMessageQueue, InMemoryTicketRepository
from shared.storage.tables.due import TableDueIndex

NOW = datetime(2026, 11, 28, 12, 0, 30, 123456, tzinfo=UTC)
QUEUES = Queues(agent="agent-actions", followups="followups", checks="agent-checks")


@pytest.fixture(params=["memory", "table"])
def due(request: pytest.FixtureRequest) -> Iterator[DueIndex]:
    if request.param == "memory":
        yield InMemoryDueIndex()
        return
    table = StorageClients(request.getfixturevalue("azurite_conn")).table(f"d{uuid.uuid4().hex[:20]}")
    table.create_table()
    try:
        yield TableDueIndex(table)
    finally:
        table.delete_table()


def item(ticket: int, at: datetime, kind: DueKind = DueKind.FOLLOWUP, seq: int = 2) -> DueItem:
    return DueItem(kind=kind, ticket_id=ticket, seq=seq, due_at=at)


def ids(items: list[DueItem]) -> list[str]:
    return [i.id for i in items]


def test_an_item_is_found_when_due_and_not_before(due: DueIndex) -> None:
    due.add(item(1, NOW))
    assert due.due(NOW - timedelta(hours=1), NOW - timedelta(microseconds=1), 10) == []
    [found] = due.due(NOW - timedelta(hours=1), NOW, 10)
    assert found == item(1, NOW)  # every field back as written, to the microsecond
    assert found.enqueued_at is None and found.sends == 0


def test_items_come_earliest_minute_first_and_at_most_limit(due: DueIndex) -> None:
    for n in range(5):
        due.add(item(10 - n, NOW + timedelta(minutes=n)))
    later = NOW + timedelta(hours=1)
    assert ids(due.due(NOW, later, 10)) == [f"followup-{10 - n}-2" for n in range(5)]
    assert ids(due.due(NOW, later, 2)) == ["followup-10-2", "followup-9-2"]
    assert ids(due.due(NOW + timedelta(minutes=3), later, 10)) == ["followup-7-2", "followup-6-2"]


def test_adding_again_keeps_the_item_as_it_is(due: DueIndex) -> None:
    due.add(item(1, NOW))
    [stored] = due.due(NOW, NOW, 10)
    due.mark_sent(stored, NOW + timedelta(seconds=5))
    due.add(item(1, NOW))  # a retry of the writer
    [again] = due.due(NOW, NOW, 10)
    assert again.sends == 1 and again.enqueued_at == NOW + timedelta(seconds=5)


def test_mark_sent_counts_and_a_removed_item_stays_removed(due: DueIndex) -> None:
    due.add(item(1, NOW))
    [stored] = due.due(NOW, NOW, 10)
    due.mark_sent(stored, NOW)
    [once] = due.due(NOW, NOW, 10)
    due.mark_sent(once, NOW + timedelta(minutes=10))
    [twice] = due.due(NOW, NOW + timedelta(minutes=10), 10)
    assert twice.sends == 2 and twice.enqueued_at == NOW + timedelta(minutes=10)
    due.remove(DueKind.FOLLOWUP, 1, 2, twice.due_at)
    due.mark_sent(twice, NOW + timedelta(minutes=20))  # the sweeper was late: its consumer finished
    assert due.due(NOW, NOW + timedelta(hours=1), 10) == []


def test_remove_names_the_item_by_kind_ticket_seq_and_minute(due: DueIndex) -> None:
    due.add(item(1, NOW))
    due.add(item(1, NOW, DueKind.ASSUME))
    due.add(item(1, NOW, seq=3))
    due.remove(DueKind.FOLLOWUP, 1, 2, NOW + timedelta(seconds=10))  # same minute: the same item
    due.remove(DueKind.FOLLOWUP, 1, 2, NOW)  # absent now: nothing happens
    due.remove(DueKind.CHECK, 9, 9, NOW)
    assert sorted(ids(due.due(NOW, NOW, 10))) == ["assume-1-2", "followup-1-3"]


def test_the_cursor_is_kept_and_is_not_an_item(due: DueIndex) -> None:
    assert due.cursor() is None
    due.set_cursor(NOW)
    due.set_cursor(NOW + timedelta(minutes=5))
    assert due.cursor() == NOW + timedelta(minutes=5)
    assert due.due(datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC), 10) == []


def test_a_past_due_item_is_dated_now_so_no_sweep_has_left_it_behind() -> None:
    assert schedule(DueKind.ASSUME, 1, 2, NOW - timedelta(days=3), NOW).due_at == NOW
    assert schedule(DueKind.ASSUME, 1, 2, NOW + timedelta(days=3), NOW).due_at == NOW + timedelta(days=3)


def test_a_sweep_costs_the_same_round_trips_with_10_or_1000_items_not_yet_due(azurite_conn: str) -> None:
    def one_run(scheduled: int) -> int:
        table = StorageClients(azurite_conn).table(f"d{uuid.uuid4().hex[:20]}")
        table.create_table()
        try:
            index = TableDueIndex(table)
            for n in range(scheduled):  # resolved tickets whose follow-ups are spread over the day
                index.add(item(n + 1, NOW + timedelta(seconds=60 + n * 80)))
            sweeper = Sweeper(
                index, InMemoryTicketRepository(), InMemoryMessageQueue(), lambda: NOW, QUEUES, SweepTimings()
            )
            sweeper.run()  # the first run writes the cursor
            before = round_trips()
            report = sweeper.run()
            assert report.sent == 0
            return round_trips() - before
        finally:
            table.delete_table()

    small, large = one_run(10), one_run(1000)
    assert small == large <= 3


def test_a_sweep_of_many_due_items_is_bounded_by_its_batch(azurite_conn: str) -> None:
    table = StorageClients(azurite_conn).table(f"d{uuid.uuid4().hex[:20]}")
    table.create_table()
    try:
        index = TableDueIndex(table)
        for n in range(60):
            index.add(item(n + 1, NOW - timedelta(seconds=n * 20)))
        queue = InMemoryMessageQueue()
        timings = SweepTimings(batch=25)
        sweeper = Sweeper(index, InMemoryTicketRepository(), queue, lambda: NOW, QUEUES, timings)
        before = round_trips()
        report = sweeper.run()
        used = round_trips() - before
        assert report.sent == 25 and len(queue.messages("followups")) == 25
        assert used <= 3 + 25  # cursor read, query, one mark per item, cursor write
    finally:
        table.delete_table()
