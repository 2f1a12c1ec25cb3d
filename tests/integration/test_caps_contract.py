"""Contract of ActionCaps: the fake and the Table adapter on Azurite alike.

A slot belongs to a holder (a process request): taking it again takes nothing more, and
releasing it gives it back, so the cap counts exactly the actions that committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from shared.ports import ActionCaps
from shared.storage.clients import StorageClients, round_trips
from shared.storage.memory import InMemoryActionCaps
from shared.storage.tables.caps import TableActionCaps

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
MakeCaps = Callable[[int, int], ActionCaps]


def fresh_table(conn: str) -> TableClient:
    """Caps rows are keyed by day: a table of its own keeps each test's windows empty."""
    table = StorageClients(conn).table(f"caps{uuid.uuid4().hex[:12]}")
    table.create_table()
    return table


@pytest.fixture(params=["memory", "table"])
def make_caps(request: pytest.FixtureRequest) -> MakeCaps:
    """A factory of instances over one store (each Table instance has its own cached rows)."""
    if request.param == "memory":
        store: dict[tuple[int, int], InMemoryActionCaps] = {}
        return lambda hour, day: store.setdefault((hour, day), InMemoryActionCaps(hour, day))
    table = fresh_table(request.getfixturevalue("azurite_conn"))
    return lambda hour, day: TableActionCaps(table, hour, day)


def holder() -> str:
    return uuid.uuid4().hex


def test_the_hourly_cap_admits_exactly_n_and_names_the_reason(make_caps: MakeCaps) -> None:
    caps = make_caps(3, 100)
    results = [caps.try_acquire(NOW, holder()) for _ in range(5)]
    assert results == [None, None, None, "hourly_cap_reached", "hourly_cap_reached"]
    assert caps.try_acquire(NOW + timedelta(hours=1), holder()) is None
    assert caps.usage(NOW) == (3, 4)


def test_the_daily_cap_spans_hours(make_caps: MakeCaps) -> None:
    caps = make_caps(100, 2)
    taken = [caps.try_acquire(NOW + timedelta(hours=h), holder()) for h in range(3)]
    assert taken == [None, None, "daily_cap_reached"]
    assert caps.try_acquire(NOW + timedelta(days=1), holder()) is None


def test_a_holder_takes_one_slot_however_often_it_asks(make_caps: MakeCaps) -> None:
    first, second = make_caps(2, 100), make_caps(2, 100)  # a retry may run on another instance
    me = holder()
    assert [first.try_acquire(NOW, me), second.try_acquire(NOW, me), first.try_acquire(NOW, me)] == [None] * 3
    assert first.usage(NOW) == (1, 1)
    assert first.try_acquire(NOW, holder()) is None
    assert second.try_acquire(NOW, holder()) == "hourly_cap_reached"
    assert second.try_acquire(NOW, me) is None  # still held: a full cap does not refuse its holder


def test_a_released_slot_can_be_taken_by_another_instance(make_caps: MakeCaps) -> None:
    here, there = make_caps(1, 100), make_caps(1, 100)
    me, you = holder(), holder()
    assert here.try_acquire(NOW, me) is None
    assert there.try_acquire(NOW, you) == "hourly_cap_reached"  # `there` now caches a full row
    here.release(NOW, me)
    assert there.try_acquire(NOW, you) is None  # a cached full row is read again before refusing
    assert here.usage(NOW) == (1, 1)


def test_release_is_idempotent_and_only_gives_back_what_was_held(make_caps: MakeCaps) -> None:
    caps = make_caps(5, 100)
    me = holder()
    caps.try_acquire(NOW, me)
    caps.try_acquire(NOW, holder())
    for _ in range(3):
        caps.release(NOW, me)
    caps.release(NOW, holder())  # never held anything
    assert caps.usage(NOW) == (1, 1)


def test_a_slot_taken_before_midnight_is_released_from_its_own_day(make_caps: MakeCaps) -> None:
    caps = make_caps(10, 10)
    late = datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC)
    me = holder()
    caps.try_acquire(late, me)
    caps.try_acquire(late + timedelta(seconds=2), holder())
    caps.release(late, me)
    assert caps.usage(late) == (0, 0) and caps.usage(late + timedelta(seconds=2)) == (1, 1)


def test_caps_are_exact_under_concurrency_across_instances(make_caps: MakeCaps) -> None:
    first, second = make_caps(10, 500), make_caps(10, 500)  # two instances over one store
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: (first if i % 2 else second).try_acquire(NOW, holder()), range(40)))
    assert results.count(None) == 10
    assert set(results) - {None} == {"hourly_cap_reached"}


def test_concurrent_takes_and_releases_never_exceed_the_cap(make_caps: MakeCaps) -> None:
    """Losers give their slots back while others take them: at no point more than the cap."""
    first, second = make_caps(4, 500), make_caps(4, 500)
    kept: list[str] = []

    def race(i: int) -> None:
        caps, me = (first if i % 2 else second), holder()
        if caps.try_acquire(NOW, me) is None:
            if i % 3:  # most lose their commit and give the slot back
                caps.release(NOW, me)
            else:
                kept.append(me)
            assert caps.usage(NOW)[0] <= 4

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(race, range(60)))
    assert first.usage(NOW) == (len(kept), len(kept)) and len(kept) <= 4


def test_an_uncontended_table_cap_take_is_one_round_trip(azurite_conn: str) -> None:
    caps = TableActionCaps(fresh_table(azurite_conn), 100, 500, shards=1)
    caps.try_acquire(NOW, holder())
    before = round_trips()
    assert caps.try_acquire(NOW, holder()) is None
    assert round_trips() - before == 1
