"""Contract of RollbackLog: the fake and the Table adapter on Azurite alike.

One row counts the recent rollbacks for every instance: the per-admin throttle over its trailing
window and, for auto-pause, the rollbacks of the trailing hour since the last pause. A rollback
is counted once per action id, a refused one writes nothing, a released one is forgotten.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableClient

from shared.errors import RollbackLogFull
from shared.ports import QuotaExceeded, RollbackLog, RollbackTally, WindowLimit, WindowUsage
from shared.storage.clients import StorageClients, round_trips
from shared.storage.memory import InMemoryRollbackLog
from shared.storage.sizes import TABLE_STRING_UNITS, utf16_units
from shared.storage.tables import rollbacks
from shared.storage.tables.rollbacks import TableRollbackLog

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
HOURLY = WindowLimit(10, 3600)
MakeLog = Callable[[], RollbackLog]


def fresh_table(conn: str) -> TableClient:
    """The log is one fixed row: a table of its own keeps each test's row empty."""
    table = StorageClients(conn).table(f"rb{uuid.uuid4().hex[:12]}")
    table.create_table()
    return table


@pytest.fixture(params=["memory", "table"])
def make_log(request: pytest.FixtureRequest) -> MakeLog:
    """A factory of instances over one store (each Table instance has its own cached row)."""
    if request.param == "memory":
        store = InMemoryRollbackLog()
        return lambda: store
    table = fresh_table(request.getfixturevalue("azurite_conn"))
    return lambda: TableRollbackLog(table)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def action() -> str:
    return f"{uuid.uuid4().int % 10**6}-{uuid.uuid4().int % 100}"


def test_the_same_action_is_counted_once_on_any_instance(make_log: MakeLog) -> None:
    here, there = make_log(), make_log()
    first = here.reserve("12-3", "ada", at(0), HOURLY)
    again = [there.reserve("12-3", "ada", at(1), HOURLY), here.reserve("12-3", "bob", at(2), HOURLY)]
    assert first == RollbackTally(WindowUsage(10, 1, at(60).timestamp()), 1)
    assert [t.recent for t in again] == [1, 1] and [t.usage.used for t in again] == [1, 0]
    assert here.reserve("12-4", "ada", at(3), HOURLY).recent == 2


def test_the_throttle_is_exact_and_per_admin(make_log: MakeLog) -> None:
    log, limit = make_log(), WindowLimit(3, 3600)
    used = [log.reserve(action(), "ada", at(i), limit).usage.used for i in range(3)]
    assert used == [1, 2, 3]
    with pytest.raises(QuotaExceeded) as refused:
        log.reserve(action(), "ada", at(5), limit)
    assert (
        refused.value.usage.used == 3
        and refused.value.usage.reset_at == (NOW + timedelta(hours=1)).timestamp()
    )
    tally = log.reserve(action(), "bob", at(6), limit)  # another admin has a window of his own
    assert tally.usage.used == 1 and tally.recent == 4  # the refused one was not counted


def test_the_throttle_window_trails(make_log: MakeLog) -> None:
    log, limit = make_log(), WindowLimit(2, 600)
    log.reserve(action(), "ada", at(0), limit)
    log.reserve(action(), "ada", at(2), limit)
    with pytest.raises(QuotaExceeded) as refused:
        log.reserve(action(), "ada", at(9.99), limit)
    assert refused.value.usage.reset_at == at(10).timestamp()  # when the oldest leaves the window
    tally = log.reserve(action(), "ada", at(10), limit)  # the one at 0 is exactly 600 s old: out
    assert tally.usage.used == 2 and tally.usage.reset_at == at(12).timestamp()
    with pytest.raises(QuotaExceeded):
        log.reserve(action(), "ada", at(11), limit)


def test_a_zero_limit_refuses_every_rollback(make_log: MakeLog) -> None:
    with pytest.raises(QuotaExceeded) as refused:
        make_log().reserve(action(), "ada", NOW, WindowLimit(0, 60))
    assert refused.value.usage.used == 0 and refused.value.usage.reset_at == at(1).timestamp()


def test_release_forgets_the_reservation_and_nothing_else(make_log: MakeLog) -> None:
    log, limit = make_log(), WindowLimit(2, 3600)
    kept, refused = action(), action()
    log.reserve(kept, "ada", at(0), limit)
    log.reserve(refused, "ada", at(1), limit)
    for _ in range(2):
        log.release(refused)
    log.release("99-9")  # never reserved
    tally = log.reserve(action(), "ada", at(2), limit)
    assert tally.usage.used == 2 and tally.recent == 2
    log.release(kept)
    again = log.reserve(refused, "ada", at(3), limit)  # a released action counts anew
    assert again.usage.used == 2 and again.recent == 2


def test_a_release_gives_back_one_hold_of_the_action(make_log: MakeLog) -> None:
    """A forced and a plain rollback of one action hold it together; the plain one is refused
    (the ticket changed) and releases, the forced one commits: the rollback stays counted."""
    here, there = make_log(), make_log()
    forced, plain = here.reserve("8-2", "ada", at(0), HOURLY), there.reserve("8-2", "bob", at(1), HOURLY)
    assert forced.recent == plain.recent == 1
    there.release("8-2")
    assert here.reserve(action(), "cy", at(2), HOURLY).recent == 2  # 8-2 still counted
    here.release("8-2")  # its last hold: gone
    assert there.reserve(action(), "cy", at(3), HOURLY).recent == 2


def test_recent_counts_the_trailing_hour_since_the_last_pause(make_log: MakeLog) -> None:
    log, limit = make_log(), WindowLimit(100, 7200)
    assert [log.reserve(action(), "ada", at(m), limit).recent for m in (0, 30, 59)] == [1, 2, 3]
    assert log.reserve(action(), "bob", at(60), limit).recent == 3  # the one at 0 left the hour
    log.paused(at(60))
    log.paused(at(45))  # an older pause does not move the mark back
    log.paused(at(60))
    tally = log.reserve(action(), "ada", at(61), limit)
    assert tally.recent == 1
    assert tally.usage.used == 4  # a pause resets the count, not the throttle
    assert log.reserve(action(), "ada", at(100), limit).recent == 2


def test_a_known_action_keeps_its_time(make_log: MakeLog) -> None:
    log = make_log()
    log.reserve("7-1", "ada", at(0), HOURLY)
    log.reserve("7-2", "ada", at(30), HOURLY)
    assert log.reserve("7-1", "ada", at(61), HOURLY).recent == 1  # counted at 0, out of the hour now


def test_odd_action_ids_and_admins_are_kept_apart(make_log: MakeLog) -> None:
    log, limit = make_log(), WindowLimit(1, 3600)
    odd = ["a b;c", "x" * 2000, "é🙂\u0001", "x" * 1999 + "y"]
    assert [log.reserve(a, f"{a} admin", at(i), limit).recent for i, a in enumerate(odd)] == [1, 2, 3, 4]
    assert log.reserve(odd[1], "x" * 2000 + " admin", at(5), limit).recent == 4


def test_the_throttle_is_exact_under_concurrency_across_instances(make_log: MakeLog) -> None:
    first, second = make_log(), make_log()
    limit = WindowLimit(10, 3600)

    def rollback(i: int) -> int | None:
        try:
            return (first if i % 2 else second).reserve(action(), "ada", NOW, limit).recent
        except QuotaExceeded:
            return None

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(rollback, range(40)))
    assert sorted(r for r in results if r is not None) == list(range(1, 11))
    assert results.count(None) == 30


def test_recent_is_exact_under_concurrency_across_instances(make_log: MakeLog) -> None:
    first, second = make_log(), make_log()
    limit = WindowLimit(1000, 3600)
    with ThreadPoolExecutor(16) as pool:
        tallies = list(
            pool.map(
                lambda i: (first if i % 2 else second).reserve(action(), f"admin{i % 7}", NOW, limit),
                range(40),
            )
        )
    assert sorted(t.recent for t in tallies) == list(range(1, 41))


def test_concurrent_reservations_of_one_action_count_once(make_log: MakeLog) -> None:
    first, second = make_log(), make_log()
    with ThreadPoolExecutor(8) as pool:
        tallies = list(
            pool.map(lambda i: (first, second)[i % 2].reserve("5-5", "ada", NOW, HOURLY), range(16))
        )
    assert {t.recent for t in tallies} == {1} and {t.usage.used for t in tallies} == {1}


def test_reservations_racing_releases_never_pass_the_limit(make_log: MakeLog) -> None:
    """Losers give their place back while others reserve: never more than the limit held."""
    first, second = make_log(), make_log()
    limit = WindowLimit(4, 3600)
    kept: list[str] = []
    lock = threading.Lock()

    def race(i: int) -> None:
        log, mine = (first if i % 2 else second), action()
        try:
            tally = log.reserve(mine, "ada", NOW, limit)
        except QuotaExceeded:
            return
        assert tally.usage.used <= 4
        if i % 3:
            log.release(mine)
        else:
            with lock:
                kept.append(mine)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(race, range(60)))
    assert 1 <= len(kept) <= 4
    probe = first.reserve(action(), "bob", NOW, limit)
    assert probe.recent == len(kept) + 1


def test_a_stale_cache_neither_over_nor_under_counts(make_log: MakeLog) -> None:
    here, there = make_log(), make_log()
    limit = WindowLimit(2, 3600)
    a, b = action(), action()
    here.reserve(a, "ada", at(0), limit)  # `here` caches one entry
    there.reserve(b, "ada", at(1), limit)
    with pytest.raises(QuotaExceeded):  # under-count: the cached row shows one, the store two
        here.reserve(action(), "ada", at(2), limit)
    there.release(b)  # `here` now caches a full window
    assert here.reserve(action(), "ada", at(3), limit).usage.used == 2  # over-count: read again
    there.release(a)
    again = here.reserve(a, "ada", at(4), limit)  # `here` thinks it is known; it was released
    assert again.recent == 2 and again.usage.used == 2


def test_an_uncontended_reservation_is_one_round_trip(azurite_conn: str) -> None:
    log = TableRollbackLog(fresh_table(azurite_conn))
    log.reserve(action(), "ada", at(0), HOURLY)
    before = round_trips()
    assert log.reserve(action(), "ada", at(1), HOURLY).recent == 2
    log.release(action())  # nothing to forget: confirmed on a fresh read
    assert round_trips() - before == 2


def test_each_write_prunes_what_left_the_longest_window(azurite_conn: str) -> None:
    table = fresh_table(azurite_conn)
    log = TableRollbackLog(table)
    for minutes in (0, 50, 100):
        log.reserve(action(), "ada", at(minutes), WindowLimit(100, 600))
    entries = rollbacks.entries_of(table.get_entity(rollbacks.ROLLBACKS_PARTITION, rollbacks.ROLLBACKS_ROW))
    assert [e.at for e in entries] == [rollbacks.micros(at(50)), rollbacks.micros(at(100))]  # the hour


def azure_entity_bytes(entity: dict[str, Any]) -> int:
    """An entity's size as Azure Table Storage counts it (strings in UTF-16)."""
    size = 4 + 2 * utf16_units(entity["PartitionKey"] + entity["RowKey"])
    for name, value in entity.items():
        if name not in ("PartitionKey", "RowKey"):
            assert isinstance(value, str)
            size += 8 + 2 * utf16_units(name) + 4 + 2 * utf16_units(value)
    return size


def test_the_row_refuses_rather_than_drops_when_full(azurite_conn: str) -> None:
    """The biggest row the log writes fits Azurite's limits; one more entry is refused, nothing
    written; once entries leave the window the log takes new ones again."""
    table = fresh_table(azurite_conn)
    worst = [rollbacks.Entry("9" * 40, "f" * 16, rollbacks.micros(at(m / 1000))) for m in range(20000)]
    low, high = 0, len(worst)
    while low < high:  # the most entries that fit
        mid = (low + high + 1) // 2
        low, high = (mid, high) if rollbacks.encode(worst[:mid], 1) else (low, mid - 1)
    full = rollbacks.encode(worst[:low], rollbacks.micros(NOW))
    assert full is not None and low > 5000
    table.upsert_entity(
        {"PartitionKey": rollbacks.ROLLBACKS_PARTITION, "RowKey": rollbacks.ROLLBACKS_ROW, **full}
    )
    stored = table.get_entity(rollbacks.ROLLBACKS_PARTITION, rollbacks.ROLLBACKS_ROW)
    assert len(stored) == len(full) + 2 and max(utf16_units(v) for v in full.values()) <= TABLE_STRING_UNITS
    assert azure_entity_bytes(stored) <= 1024 * 1024, azure_entity_bytes(stored)  # Azurite counts UTF-8
    log = TableRollbackLog(table)
    with pytest.raises(RollbackLogFull):
        log.reserve("8" * 40, "ada", at(30), HOURLY)
    after = table.get_entity(rollbacks.ROLLBACKS_PARTITION, rollbacks.ROLLBACKS_ROW)
    assert after.metadata["etag"] == stored.metadata["etag"]
    assert log.reserve(action(), "ada", at(80), HOURLY).recent == 1  # the old ones were pruned
