"""Work queues (TicketRepository.list_queue): one contract for the in-memory fake and the Table
adapter's index on Azurite, then what only the index can get wrong: crashes between its writes
and the commit, entries left behind, the shards of the `new` queue, rebuilds, round trips."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError

from shared.domain.models import ActionType, Priority, Status, Ticket
from shared.domain.queues import Queue
from shared.errors import ConcurrencyConflict, ValidationFailed
from shared.ports import QuotaExceeded, TicketRepository, WindowLimit
from shared.storage import names
from shared.storage.clients import StorageClients, round_trips
from shared.storage.keys import QUEUE_SHARDS, queue_cursor, queue_partitions, ticket_key
from shared.storage.memory import InMemoryTicketRepository
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.queues import entries_of
from shared.storage.tables.tickets import TableTicketRepository, _ticket_entity
from tests.integration.test_ticket_repository_contract import NOW, Failing, draft, new_ticket, table_repo


@pytest.fixture(params=["memory", "table"])
def repo(request: pytest.FixtureRequest) -> TicketRepository:
    if request.param == "memory":
        return InMemoryTicketRepository()
    return table_repo(request.getfixturevalue("azurite_conn"))


def name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def change(repo: TicketRepository, ticket: Ticket, **fields: Any) -> Ticket:
    changed, entry = ticket.advance(ActionType.STATUS_CHANGE, "sam", NOW, fields)
    repo.save(changed, [entry])
    return changed


def walk(repo: TicketRepository, queue: Queue, limit: int) -> list[int]:
    """Every page of a queue, in order."""
    ids: list[int] = []
    cursor = None
    for _ in range(1000):
        page = repo.list_queue(queue, limit, cursor)
        ids += [t.id for t in page.results]
        assert all(queue.matches(t) for t in page.results)
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the pages never ended")


def expected(repo: TicketRepository, queue: Queue, ids: list[int]) -> list[int]:
    tickets = [repo.get(i) for i in ids]
    return sorted((t.id for t in tickets if t is not None and queue.matches(t)), reverse=True)


def mine(listed: list[int], ids: list[int]) -> list[int]:
    """The status queues are shared with the other tests' tickets: only ours count."""
    return [i for i in listed if i in set(ids)]


def test_each_queue_lists_exactly_its_tickets_newest_first_on_every_page(repo: TicketRepository) -> None:
    alice, bob, network, desk = name("alice"), name("bob"), name("network"), name("desk")
    tickets = [new_ticket(repo, alice if i % 3 else bob) for i in range(7)]
    ids = [t.id for t in tickets]
    tickets[0] = change(repo, tickets[0], status=Status.ESCALATED, priority=Priority.HIGH)
    tickets[1] = change(repo, tickets[1], status=Status.ESCALATED, assigned_team=network)
    tickets[2] = change(repo, tickets[2], status=Status.ASSIGNED, assigned_team=network)
    tickets[3] = change(repo, tickets[3], status=Status.ESCALATED, assigned_team=desk, priority=Priority.HIGH)
    tickets[3] = change(repo, tickets[3], assigned_team=network)  # a team change within the status
    tickets[4] = change(repo, tickets[4], status=Status.ESCALATED)
    tickets[4] = change(repo, tickets[4], status=Status.OPEN)  # and out again
    queues = [
        Queue(status=s, **extra)
        for s in (Status.NEW, Status.ESCALATED, Status.ASSIGNED, Status.OPEN)
        for extra in (
            {},
            {"assigned_team": network},
            {"assigned_team": desk},
            {"priority": Priority.HIGH},
            {"priority": Priority.MEDIUM},
            {"owner": alice},
            {"owner": bob},
        )
    ]
    for queue in queues:
        want = expected(repo, queue, ids)
        for limit in (1, 2, 100):
            listed = walk(repo, queue, limit)
            got = mine(listed, ids) if queue.assigned_team is None and queue.owner is None else listed
            assert got == want, (queue, limit)
    escalated_network = walk(repo, Queue(status=Status.ESCALATED, assigned_team=network), 10)
    assert escalated_network == [tickets[3].id, tickets[1].id]


def test_a_cursor_works_for_its_own_queue_only(repo: TicketRepository) -> None:
    alice = name("alice")
    for _ in range(3):
        new_ticket(repo, alice)
    queue = Queue(status=Status.NEW, owner=alice)
    first = repo.list_queue(queue, 1, None)
    assert first.next_cursor is not None
    other = Queue(status=Status.NEW, owner=name("mallory"))
    tampered = first.next_cursor[:-2] + ("AA" if not first.next_cursor.endswith("AA") else "BB")
    for bad_queue, cursor in [
        (other, first.next_cursor),  # another user's list: not a way into alice's
        (Queue(status=Status.OPEN, owner=alice), first.next_cursor),
        (queue, tampered),
        (queue, "000000000042"),  # the unfiltered lists' cursor
        (queue, "not-a-cursor"),
        (queue, queue_cursor("0123456789abcdef", 1)),
    ]:
        with pytest.raises(ValidationFailed):
            repo.list_queue(bad_queue, 1, cursor)


def test_an_owner_queue_never_shows_another_users_ticket(repo: TicketRepository) -> None:
    alice, mallory = name("alice"), name("mallory")
    own = new_ticket(repo, alice)
    new_ticket(repo, mallory)
    assert [t.id for t in repo.list_queue(Queue(status=Status.NEW, owner=alice), 10, None).results] == [
        own.id
    ]


# ---- the Table adapter's index --------------------------------------------------------------


def queues_table(conn: str) -> Any:
    return StorageClients(conn).table(names.TICKET_QUEUES)


def entries(conn: str, ticket: Ticket) -> set[tuple[str, str]]:
    table = queues_table(conn)
    found = set()
    for partition in {p for s in Status for p in queue_partitions(s.value, ticket.user)}:
        query = f"PartitionKey eq '{partition}'"
        found |= {
            (r["PartitionKey"], r["RowKey"]) for r in table.query_entities(query) if r["Id"] == ticket.id
        }
    return found


def current(ticket: Ticket) -> set[tuple[str, str]]:
    return {
        (r["PartitionKey"], r["RowKey"])
        for r in entries_of(ticket.id, ticket.user, ticket.state(), ticket.version)
    }


def broken(conn: str, tickets: tuple[str, ...] = (), queues: tuple[str, ...] = ()) -> TableTicketRepository:
    clients = StorageClients(conn)
    return TableTicketRepository(
        Failing(clients.table(names.TICKETS), *tickets),  # type: ignore[arg-type]
        clients.table(names.TICKET_OWNERS),
        TableIdAllocator(clients.table(names.COUNTERS)),
        Failing(clients.table(names.TICKET_QUEUES), *queues),  # type: ignore[arg-type]
    )


def test_a_change_leaves_exactly_the_entries_of_its_new_state(azurite_conn: str) -> None:
    repo, alice = table_repo(azurite_conn), name("alice")
    ticket = new_ticket(repo, alice)
    assert entries(azurite_conn, ticket) == current(ticket)
    for fields in (
        {"status": Status.ESCALATED},
        {"assigned_team": name("network")},
        {"priority": Priority.HIGH},
        {"reason": "nothing the queues see"},
        {"status": Status.NEW, "assigned_team": None},
    ):
        ticket = change(repo, ticket, **{k: v for k, v in fields.items() if k != "reason"})
        assert entries(azurite_conn, ticket) == current(ticket), fields


def test_a_crash_before_the_commit_keeps_the_ticket_in_its_queue_and_out_of_the_next(
    azurite_conn: str,
) -> None:
    repo, alice = table_repo(azurite_conn), name("alice")
    ticket = new_ticket(repo, alice)
    crashing = broken(azurite_conn, tickets=("submit_transaction",))
    escalated, entry = ticket.advance(ActionType.ESCALATE, "agent", NOW, {"status": Status.ESCALATED})
    with pytest.raises(ServiceRequestError):
        crashing.save(escalated, [entry])  # the entries of the escalated queue are written, no commit
    mine = Queue(status=Status.NEW, owner=alice)
    assert [t.id for t in repo.list_queue(mine, 10, None).results] == [ticket.id]
    assert ticket.id not in walk(repo, Queue(status=Status.ESCALATED), 100)
    assert [
        t.id for t in repo.list_queue(Queue(status=Status.ESCALATED, owner=alice), 10, None).results
    ] == []
    repo.save(escalated, [entry])  # the retry
    assert ticket.id in walk(repo, Queue(status=Status.ESCALATED), 100)
    assert repo.list_queue(mine, 10, None).results == []
    assert entries(azurite_conn, escalated) == current(escalated)


def test_entries_a_crash_after_the_commit_left_are_never_shown_and_the_next_reader_deletes_them(
    azurite_conn: str,
) -> None:
    repo, alice = table_repo(azurite_conn), name("alice")
    ticket = change(repo, new_ticket(repo, alice), status=Status.ESCALATED)
    crashing = broken(azurite_conn)
    crashing._index.leave = lambda change: None  # type: ignore[method-assign]  # dies after the commit
    assigned = change(crashing, ticket, status=Status.ASSIGNED)
    left = entries(azurite_conn, assigned) - current(assigned)
    assert left and all(p == "escalated" for p, _ in left)
    assert ticket.id not in walk(repo, Queue(status=Status.ESCALATED), 100)
    assert repo.list_queue(Queue(status=Status.ESCALATED, owner=alice), 10, None).results == []
    assert ticket.id not in walk(repo, Queue(status=Status.ESCALATED, priority=Priority.MEDIUM), 100)
    assert entries(azurite_conn, assigned) == current(assigned)  # the readers deleted them


def test_an_entry_of_a_change_in_flight_is_not_shown_nor_deleted(azurite_conn: str) -> None:
    repo, alice = table_repo(azurite_conn), name("alice")
    ticket = new_ticket(repo, alice)
    crashing = broken(azurite_conn, tickets=("submit_transaction",))
    escalated, entry = ticket.advance(ActionType.ESCALATE, "agent", NOW, {"status": Status.ESCALATED})
    with pytest.raises(ServiceRequestError):
        crashing.save(escalated, [entry])
    walk(repo, Queue(status=Status.ESCALATED), 100)  # a reader passes the entry of version 2
    pending = {e for e in current(escalated) if e[0] == "escalated"}
    assert pending <= entries(azurite_conn, ticket)  # kept: its commit may still come


def test_a_create_whose_ticket_insert_fails_is_listed_nowhere_and_rebuild_removes_its_entries(
    azurite_conn: str,
) -> None:
    alice = name("alice")
    crashing = broken(azurite_conn, tickets=("create_entity",))
    ticket = draft(crashing, alice)
    with pytest.raises(ServiceRequestError):
        crashing.add(ticket)
    assert entries(azurite_conn, ticket) == current(ticket)  # an insert that timed out may have landed
    repo = table_repo(azurite_conn)
    assert repo.list_queue(Queue(status=Status.NEW, owner=alice), 10, None).results == []
    assert entries(azurite_conn, ticket) == current(ticket)  # a create in flight looks the same: kept
    repo.rebuild_queues()
    assert entries(azurite_conn, ticket) == current(ticket)  # by a rebuild too, while they are young
    repo.rebuild_queues(orphan_age=timedelta(0))
    assert entries(azurite_conn, ticket) == set()


def test_a_rebuild_keeps_the_entries_of_a_create_whose_insert_is_late(azurite_conn: str) -> None:
    """A create writes its entries, a rebuild runs, then the ticket's insert lands: listed."""
    alice = name("alice")
    crashing = broken(azurite_conn, tickets=("create_entity",))
    ticket = draft(crashing, alice)
    with pytest.raises(ServiceRequestError):
        crashing.add(ticket)  # the entries are written; the insert has not landed yet
    repo = table_repo(azurite_conn)
    repo.rebuild_queues()
    StorageClients(azurite_conn).table(names.TICKETS).create_entity(_ticket_entity(ticket))  # late insert
    assert [t.id for t in repo.list_queue(Queue(status=Status.NEW, owner=alice), 10, None).results] == [
        ticket.id
    ]


def test_a_refused_create_takes_its_entries_back(azurite_conn: str) -> None:
    repo, alice = table_repo(azurite_conn), name("alice")
    limit = WindowLimit(1, 60)
    repo.add(draft(repo, alice), limit)
    refused = draft(repo, alice)
    with pytest.raises(QuotaExceeded):
        repo.add(refused, limit)
    assert entries(azurite_conn, refused) == set() and repo.get(refused.id) is None


def test_a_create_whose_queue_write_fails_inserts_no_ticket(azurite_conn: str) -> None:
    alice = name("alice")
    crashing = broken(azurite_conn, queues=("submit_transaction",))
    ticket = draft(crashing, alice)
    with pytest.raises(ServiceRequestError):
        crashing.add(ticket)
    assert table_repo(azurite_conn).get(ticket.id) is None


def test_the_new_queue_is_spread_over_shards_and_merged_newest_first(azurite_conn: str) -> None:
    repo = table_repo(azurite_conn)
    users = [name("user") for _ in range(24)]
    made = [new_ticket(repo, u) for u in users]
    shards = {p for t in made for p, _ in current(t)}
    assert len(shards) > 1 and shards <= set(queue_partitions("new", None))
    assert len(queue_partitions("new", None)) == QUEUE_SHARDS["new"]
    ids = [t.id for t in made]
    for limit in (1, 5, 100):
        assert mine(walk(repo, Queue(status=Status.NEW), limit), ids) == ids[::-1]


def test_a_page_costs_the_same_round_trips_whatever_the_other_tickets(azurite_conn: str) -> None:
    repo, team = table_repo(azurite_conn), name("network")
    queue = Queue(status=Status.ESCALATED, assigned_team=team)
    for _ in range(6):
        change(repo, new_ticket(repo, name("u")), status=Status.ESCALATED, assigned_team=team)

    def cost() -> tuple[int, int]:
        before = round_trips()
        first = repo.list_queue(queue, 2, None)
        middle = round_trips()
        repo.list_queue(queue, 2, first.next_cursor)
        return middle - before, round_trips() - middle

    small = cost()
    for _ in range(40):  # tickets the queue does not hold: in other queues, or left it
        other = new_ticket(repo, name("u"))
        change(repo, change(repo, other, status=Status.ESCALATED, assigned_team=team), status=Status.CLOSED)
    assert cost() == small == (4, 4)  # one query, and the 3 tickets read (one tells there is more)


def test_rebuild_restores_every_entry_and_removes_the_rest(azurite_conn: str) -> None:
    repo, alice = table_repo(azurite_conn), name("alice")
    kept = change(repo, new_ticket(repo, alice), status=Status.ESCALATED, assigned_team=name("t"))
    lost = new_ticket(repo, alice)
    table = queues_table(azurite_conn)
    for key in current(lost):
        table.delete_entity(*key)
    missing = 1_999_999_999
    junk = {
        "PartitionKey": "escalated",
        "RowKey": f"s||{ticket_key(missing)}|0000000001",
        "Id": missing,
        "Version": 1,
    }
    table.upsert_entity(junk)  # an entry of a ticket that does not exist
    repo.rebuild_queues(orphan_age=timedelta(0))
    assert entries(azurite_conn, lost) == current(lost) and entries(azurite_conn, kept) == current(kept)
    assert repo.rebuild_queues() == (0, 0)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity(junk["PartitionKey"], junk["RowKey"])
    assert [t.id for t in repo.list_queue(Queue(status=Status.NEW, owner=alice), 10, None).results] == [
        lost.id
    ]


def test_a_writer_that_lost_the_race_gets_a_conflict_and_its_entries_are_never_shown(
    azurite_conn: str,
) -> None:
    repo, alice = table_repo(azurite_conn), name("alice")
    ticket = new_ticket(repo, alice)
    winner = change(repo, ticket, priority=Priority.HIGH)  # its batch deleted the version 1 entries
    loser, entry = ticket.advance(ActionType.STATUS_CHANGE, "bob", NOW, {"priority": Priority.CRITICAL})
    with pytest.raises(ConcurrencyConflict):
        repo.save(loser, [entry])  # its batch finds them gone: written one by one, then the commit loses
    assert walk(repo, Queue(status=Status.NEW, priority=Priority.CRITICAL), 100).count(ticket.id) == 0
    assert walk(repo, Queue(status=Status.NEW, priority=Priority.HIGH), 100).count(ticket.id) == 1
    assert entries(azurite_conn, winner) == current(winner)
