"""`list_scaling`: work-queue pages at 1,000 and at 100,000 tickets, on an Azurite of their own.

The working set is the same at both sizes, made through the repository (its index entries
written as in production): 60 escalated tickets of 12 users, 20 of them `ursula`'s. The other
tickets (940, then 99,940 in all) are closed tickets of other users, seeded straight into the
tickets table in batches of 100 rows (an emulator-only shortcut: the SDK refuses a batch across
partitions, Azurite takes it), 4 batches in parallel, ~1,000 rows/s. Their index entries and
owner rows are not seeded (another 4 rows each, minutes more): they live in partitions the
measured pages never read (closed-*, the owners'); Azure reads a partition's range, never its
neighbours, while Azurite scans the whole table on every query, so on Azurite those rows would
slow every query of the index table — an emulator cost, not the design's.

Measured through TicketService.list (what the endpoint calls), in this process, on two Azurites
(one per size) with the samples of both sizes interleaved: the staff escalation queue's first
page and its third page (`?status=escalated&limit=20`), ursula's own escalated tickets, and one
raw ticket read (the emulator's own cost, which the pages' point reads share); p50 of 30 samples
each and the round trips of one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ServiceResponseError
from azure.data.tables import _table_batch

from bench.common import median, p50_p99
from devhost import azurite
from shared.domain.models import ActionType, Principal, Status, Ticket
from shared.services.tickets import TicketService
from shared.storage import names
from shared.storage.clients import StorageClients, round_trips
from shared.storage.provision import provision
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.tickets import TableTicketRepository, _ticket_entity

SMALL, LARGE = 1_000, 100_000
ESCALATED, URSULAS, LIMIT, SAMPLES = 60, 20, 20, 30
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STAFF, URSULA = Principal(sub="sam", roles=frozenset({"staff"})), Principal(sub="ursula")


def _ticket(ticket_id: int, user: str, status: Status) -> Ticket:
    return Ticket(
        id=ticket_id,
        issue_type="Laptop will not start",
        description="It beeps three times and the screen stays dark.",
        category="laptop",
        tags=[],
        status=status,
        user=user,
        created_at=NOW,
        updated_at=NOW,
    )


def _working_set(repo: TableTicketRepository) -> None:
    def make(n: int) -> None:
        user = "ursula" if n < URSULAS else f"user-{n % 11}"
        ticket = _ticket(repo.next_id(), user, Status.NEW)
        repo.add(ticket)
        changed, entry = ticket.advance(
            ActionType.ESCALATE, "autonomous_agent", NOW, {"status": Status.ESCALATED}
        )
        repo.save(changed, [entry])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(ESCALATED)))


def _seed_closed(storage: StorageClients, first_id: int, count: int) -> float:
    """`count` closed tickets from `first_id` on, 100 ticket rows a batch; the seconds it took."""
    table = storage.table(names.TICKETS)
    started = time.monotonic()

    def batch(start: int) -> None:
        rows = [
            _ticket_entity(_ticket(i, f"owner-{i % 5000}", Status.CLOSED))
            for i in range(start, min(start + 100, first_id + count))
        ]
        for attempt in range(5):  # Azurite drops a kept-alive connection now and then; upserts repeat safely
            try:
                table.submit_transaction([("upsert", row) for row in rows])
                return
            except ServiceResponseError:
                if attempt == 4:
                    raise

    check = _table_batch.TableBatchOperations._verify_partition_key
    _table_batch.TableBatchOperations._verify_partition_key = lambda self, entity: None  # type: ignore[method-assign]
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(batch, range(first_id, first_id + count, 100)))
    finally:
        _table_batch.TableBatchOperations._verify_partition_key = check  # type: ignore[method-assign]
    return time.monotonic() - started


def _calls(service: TicketService, tickets: TableTicketRepository) -> dict[str, Callable[[], Any]]:
    first = service.list(STAFF, Status.ESCALATED, LIMIT, None, False)
    second = service.list(STAFF, Status.ESCALATED, LIMIT, first.next_cursor, False)
    assert len(first.results) == LIMIT and second.next_cursor is not None
    later = second.next_cursor
    mine = service.list(URSULA, Status.ESCALATED, LIMIT, None, False)
    assert [t.user for t in mine.results] == ["ursula"] * URSULAS
    some = first.results[0].id
    return {
        "staff_escalated_first_page": lambda: service.list(STAFF, Status.ESCALATED, LIMIT, None, False),
        "staff_escalated_third_page": lambda: service.list(STAFF, Status.ESCALATED, LIMIT, later, False),
        "user_escalated": lambda: service.list(URSULA, Status.ESCALATED, LIMIT, None, False),
        "raw_ticket_read": lambda: tickets.get(some),  # the emulator's own cost of one point read
    }


def _environment(size: int) -> tuple[azurite.Azurite, dict[str, Callable[[], Any]], float]:
    """An Azurite holding `size` tickets, the calls to measure on it, and the seeding's seconds."""
    emulator = azurite.start()
    provision(emulator.connection_string)
    storage = StorageClients(emulator.connection_string)
    repo = TableTicketRepository(
        storage.table(names.TICKETS),
        storage.table(names.TICKET_OWNERS),
        TableIdAllocator(storage.table(names.COUNTERS)),
        storage.table(names.TICKET_QUEUES),
    )
    _working_set(repo)
    background = 10_000_000  # ids far above the allocator's, so no id is handed out twice
    seconds = _seed_closed(storage, background, size - ESCALATED)
    return emulator, _calls(TicketService(repo, lambda: NOW), repo), seconds


def list_scaling() -> dict[str, Any]:
    """Both sizes side by side, their samples interleaved, so a busy machine slows both alike."""
    environments = []
    try:
        for size in (SMALL, LARGE):
            environments.append(_environment(size))
        figures: list[dict[str, Any]] = [{}, {}]
        for name in environments[0][1]:
            seconds: list[list[float]] = [[], []]
            counts: list[list[int]] = [[], []]
            for _, calls, _ in environments:
                calls[name]()  # warm
            for _ in range(SAMPLES):
                for i, (_, calls, _) in enumerate(environments):
                    before, started = round_trips(), time.perf_counter()
                    calls[name]()
                    seconds[i].append(time.perf_counter() - started)
                    counts[i].append(round_trips() - before)
            for i in range(2):
                figures[i][name] = {**p50_p99(seconds[i]), "round_trips": int(median(counts[i]))}
    finally:
        for emulator, _, _ in environments:
            emulator.stop()
    small, large = figures
    headline = "staff_escalated_first_page"
    return {
        "small_tickets": SMALL,
        "large_tickets": LARGE,
        "small_ms": small[headline]["p50"],
        "large_ms": large[headline]["p50"],
        "small_round_trips": small[headline]["round_trips"],
        "large_round_trips": large[headline]["round_trips"],
        "large_small_ratio": {name: round(large[name]["p50"] / small[name]["p50"], 3) for name in small},
        "detail": {"small": small, "large": large},
        "seeding_s": round(sum(seconds for _, _, seconds in environments), 1),
        "page": {"limit": LIMIT, "escalated": ESCALATED, "users_escalated": URSULAS, "samples": SAMPLES},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(list_scaling(), indent=2))
