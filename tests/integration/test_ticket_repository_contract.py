"""One contract for every TicketRepository: the in-memory fake and the Table adapter on Azurite."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.domain.models import ActionType, HistoryEntry, Status, Ticket
from shared.errors import ConcurrencyConflict
from shared.observability import invocation_id
from shared.ports import QuotaExceeded, TicketRepository, WindowLimit
from shared.storage import names
from shared.storage.clients import StorageClients, round_trips
from shared.storage.keys import ticket_key
from shared.storage.memory import InMemoryTicketRepository
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.tickets import TableTicketRepository
from tests.helpers import race

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def table_repo(conn: str, block: int = 50) -> TableTicketRepository:
    clients = StorageClients(conn)
    return TableTicketRepository(
        clients.table(names.TICKETS),
        clients.table(names.TICKET_OWNERS),
        TableIdAllocator(clients.table(names.COUNTERS), block_size=block),
    )


@pytest.fixture(params=["memory", "table"])
def repo(request: pytest.FixtureRequest) -> TicketRepository:
    if request.param == "memory":
        return InMemoryTicketRepository()
    return table_repo(request.getfixturevalue("azurite_conn"))


def draft(repo: TicketRepository, user: str, status: Status = Status.NEW, at: datetime = NOW) -> Ticket:
    return Ticket(
        id=repo.next_id(),
        issue_type="VPN drops",
        description="d",
        category="vpn",
        tags=[],
        status=status,
        user=user,
        created_at=at,
        updated_at=at,
    )


def new_ticket(repo: TicketRepository, user: str, status: Status = Status.NEW) -> Ticket:
    ticket = draft(repo, user, status)
    repo.add(ticket)
    return ticket


def entry(ticket: Ticket, seq: int) -> HistoryEntry:
    return HistoryEntry(
        ticket_id=ticket.id, seq=seq, action_type=ActionType.STATUS_CHANGE, executed_at=NOW, executed_by="bob"
    )


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def test_a_change_must_add_one_entry_per_version_step(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    changed = ticket.model_copy(update={"version": 2})
    for entries in ([], [entry(ticket, 3)], [entry(ticket, 2), entry(ticket, 2)]):
        with pytest.raises(ValueError):
            repo.save(changed, entries)
    assert repo.get(ticket.id).version == 1  # type: ignore[union-attr]


def test_a_change_of_two_steps_adds_both_entries_or_nothing(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    two_steps = ticket.model_copy(update={"version": 3})
    repo.save(ticket.model_copy(update={"version": 2}), [entry(ticket, 2)])  # another writer came first
    with pytest.raises(ConcurrencyConflict):
        repo.save(two_steps, [entry(ticket, 2), entry(ticket, 3)])
    assert repo.get(ticket.id).version == 2  # type: ignore[union-attr]
    assert repo.get_entry(ticket.id, 3) is None
    current = repo.get(ticket.id)
    assert current is not None
    repo.save(current.model_copy(update={"version": 4}), [entry(current, 3), entry(current, 4)])
    assert [e.seq for e in repo.history(ticket.id, 10, None).results] == [4, 3, 2]


def test_an_earlier_entry_can_be_updated_alongside_the_new_one(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    repo.save(ticket.model_copy(update={"version": 2}), [entry(ticket, 2)])
    marked = entry(ticket, 2).model_copy(update={"rolled_back": True})
    repo.save(ticket.model_copy(update={"version": 3}), [entry(ticket, 3)], updated=[marked])
    assert repo.get_entry(ticket.id, 2).rolled_back  # type: ignore[union-attr]
    assert [e.seq for e in repo.history(ticket.id, 10, None).results] == [3, 2]


def test_the_ticket_and_one_entry_read_together(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    assert repo.get_with_entry(ticket.id, 2) == (ticket, None)
    changed = ticket.model_copy(update={"status": Status.OPEN, "version": 2})
    repo.save(changed, [entry(changed, 2)])
    newer = changed.model_copy(update={"status": Status.CLOSED, "version": 3})
    marked = entry(changed, 2).model_copy(update={"rolled_back": True, "rollback_reason": "r"})
    repo.save(newer, [entry(newer, 3)], updated=[marked])
    assert repo.get_with_entry(ticket.id, 2) == (newer, marked)
    assert repo.get_with_entry(ticket.id, 3) == (newer, entry(newer, 3))
    assert repo.get_with_entry(ticket.id, 4) == (newer, None)
    assert repo.get_with_entry(ticket.id + 10**6, 2) == (None, None)
    other = new_ticket(repo, user())  # another ticket's entry 2 is not this one's
    assert repo.get_with_entry(other.id, 2) == (other, None)


def test_a_ticket_and_its_entry_are_one_round_trip(azurite_conn: str) -> None:
    repo = table_repo(azurite_conn)
    ticket = new_ticket(repo, user())
    changed = ticket.model_copy(update={"version": 2})
    repo.save(changed, [entry(changed, 2)])
    before = round_trips()
    assert repo.get_with_entry(ticket.id, 2) == (changed, entry(changed, 2))
    assert round_trips() - before == 1


def test_added_ticket_reads_back_equal(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    assert repo.get(ticket.id) == ticket
    assert repo.get(ticket.id + 10**6) is None


def test_ids_are_unique_under_concurrency(repo: TicketRepository) -> None:
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda _: repo.next_id(), range(300)))
    assert len(set(ids)) == 300 and min(ids) > 0


def test_save_commits_ticket_and_history_atomically(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    changed = ticket.model_copy(update={"status": Status.OPEN, "version": 2})
    repo.save(changed, [entry(changed, 2)])
    assert repo.get(ticket.id).status == Status.OPEN  # type: ignore[union-attr]
    assert repo.get_entry(ticket.id, 2) == entry(changed, 2)


def test_save_on_a_stale_version_changes_nothing(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    repo.save(ticket.model_copy(update={"status": Status.OPEN, "version": 2}), [entry(ticket, 2)])
    stale = ticket.model_copy(update={"status": Status.CLOSED, "version": 2})
    with pytest.raises(ConcurrencyConflict):
        repo.save(stale, [entry(ticket, 2)])
    assert repo.get(ticket.id).status == Status.OPEN  # type: ignore[union-attr]
    assert repo.get_entry(ticket.id, 2).action_type == "STATUS_CHANGE"  # type: ignore[union-attr]


def test_before_commit_lands_first_and_after_commit_once_committed(repo: TicketRepository) -> None:
    """The caller's writes beside the repository's: seen by the hooks at the right side of the commit."""
    ticket = new_ticket(repo, user())
    changed = ticket.model_copy(update={"status": Status.OPEN, "version": 2})
    seen: list[tuple[str, int]] = []

    def version(name: str) -> None:
        seen.append((name, repo.get(ticket.id).version))  # type: ignore[union-attr]

    repo.save(
        changed,
        [entry(changed, 2)],
        before_commit=lambda: version("before"),
        after_commit=lambda: version("after"),
    )
    assert seen == [("before", 1), ("after", 2)]


def test_the_hooks_run_in_the_callers_context(repo: TicketRepository) -> None:
    """Their log records carry the invocation's id (and Sentry its scope), whichever thread runs them."""
    ticket = new_ticket(repo, user())
    changed = ticket.model_copy(update={"status": Status.OPEN, "version": 2})
    seen: list[str] = []
    token = invocation_id.set("inv-42")
    try:
        repo.save(
            changed,
            [entry(changed, 2)],
            before_commit=lambda: seen.append(invocation_id.get()),
            after_commit=lambda: seen.append(invocation_id.get()),
        )
    finally:
        invocation_id.reset(token)
    assert seen == ["inv-42", "inv-42"]


def test_a_failing_before_commit_commits_nothing(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    changed = ticket.model_copy(update={"status": Status.OPEN, "version": 2})
    after: list[int] = []

    def fail() -> None:
        raise ServiceRequestError("due index down")

    with pytest.raises(ServiceRequestError):
        repo.save(changed, [entry(changed, 2)], before_commit=fail, after_commit=lambda: after.append(1))
    assert repo.get(ticket.id).version == 1  # type: ignore[union-attr]
    assert repo.get_entry(ticket.id, 2) is None
    assert after == []


def test_a_lost_commit_runs_no_after_commit(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    repo.save(ticket.model_copy(update={"status": Status.OPEN, "version": 2}), [entry(ticket, 2)])
    after: list[int] = []
    with pytest.raises(ConcurrencyConflict):
        repo.save(
            ticket.model_copy(update={"status": Status.CLOSED, "version": 2}),
            [entry(ticket, 2)],
            after_commit=lambda: after.append(1),
        )
    assert after == []


def test_concurrent_saves_of_one_version_let_exactly_one_win(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())

    def attempt(i: int) -> None:
        repo.save(ticket.model_copy(update={"version": 2, "issue_type": f"w{i}"}), [entry(ticket, 2)])

    wins = race(attempt)
    assert wins.count(True) == 1
    assert repo.get(ticket.id).issue_type == f"w{wins.index(True)}"  # type: ignore[union-attr]


def test_owner_listing_is_newest_first_paged_and_filtered(repo: TicketRepository) -> None:
    alice, bob = user(), user()
    mine = [new_ticket(repo, alice, Status.OPEN if i % 2 else Status.NEW) for i in range(5)]
    new_ticket(repo, bob)
    first = repo.list_for_owner(alice, None, 3, None)
    assert [t.id for t in first.results] == [t.id for t in reversed(mine)][:3]
    second = repo.list_for_owner(alice, None, 3, first.next_cursor)
    assert [t.id for t in second.results] == [mine[1].id, mine[0].id] and second.next_cursor is None
    opened = repo.list_for_owner(alice, Status.OPEN, 10, None)
    assert [t.id for t in opened.results] == [mine[3].id, mine[1].id]
    assert repo.list_for_owner(user(), None, 10, None).results == []


def test_the_owner_index_takes_the_longest_owner_that_fits_and_no_longer(repo: TicketRepository) -> None:
    longest = uuid.uuid4().hex + "/" * 160  # 32 + 160 * 3 = 512 characters once percent-encoded
    assert repo.owner_fits(longest)
    assert not repo.owner_fits(longest + "a") and not repo.owner_fits("€" * 57)  # 513 characters
    ticket = new_ticket(repo, longest)
    assert [t.id for t in repo.list_for_owner(longest, None, 10, None).results] == [ticket.id]


def test_staff_listing_sees_everyone_newest_first(repo: TicketRepository) -> None:
    a, b = new_ticket(repo, user(), Status.ESCALATED), new_ticket(repo, user(), Status.ESCALATED)
    page = repo.list_all(Status.ESCALATED, 1, None)
    assert [t.id for t in page.results] == [b.id]
    rest = repo.list_all(Status.ESCALATED, 100, page.next_cursor)
    assert a.id in [t.id for t in rest.results] and b.id not in [t.id for t in rest.results]


def test_history_is_newest_first_and_paged(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    for version in range(2, 6):
        repo.save(ticket.model_copy(update={"version": version}), [entry(ticket, version)])
    page = repo.history(ticket.id, 3, None)
    assert [e.seq for e in page.results] == [5, 4, 3]
    rest = repo.history(ticket.id, 3, page.next_cursor)
    assert [e.seq for e in rest.results] == [2] and rest.next_cursor is None


def test_table_round_trips_are_three_per_create_and_one_per_get(azurite_conn: str) -> None:
    repo = table_repo(azurite_conn, block=1000)
    new_ticket(repo, user())  # claims the id block
    before = round_trips()
    ticket = new_ticket(repo, user())
    assert round_trips() - before == 3  # owner index and work-queue entries in parallel, then the ticket
    before = round_trips()
    repo.get(ticket.id)
    assert round_trips() - before == 1


def test_ids_are_unique_across_allocators(azurite_conn: str) -> None:
    allocators = [table_repo(azurite_conn, block=7) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: allocators[i % 4].next_id(), range(400)))
    assert len(set(ids)) == 400


class Failing:
    """A TableClient whose named operations fail as a storage outage would."""

    def __init__(self, inner: Any, *operations: str) -> None:
        self._inner, self._operations = inner, operations

    def __getattr__(self, name: str) -> Any:
        if name in self._operations:

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise ServiceRequestError("storage unreachable")

            return fail
        return getattr(self._inner, name)


def repo_with(conn: str, failing_tickets: tuple[str, ...] = (), failing_owners: tuple[str, ...] = ()) -> Any:
    clients = StorageClients(conn)
    return TableTicketRepository(
        Failing(clients.table(names.TICKETS), *failing_tickets),  # type: ignore[arg-type]
        Failing(clients.table(names.TICKET_OWNERS), *failing_owners),  # type: ignore[arg-type]
        TableIdAllocator(clients.table(names.COUNTERS)),
    )


def test_a_create_whose_index_write_fails_leaves_no_ticket(azurite_conn: str) -> None:
    broken, alice = repo_with(azurite_conn, failing_owners=("upsert_entity",)), user()
    ticket = draft(broken, alice)
    with pytest.raises(ServiceRequestError):
        broken.add(ticket)
    assert table_repo(azurite_conn).get(ticket.id) is None  # nothing its owner could not list


def test_a_create_whose_ticket_insert_fails_leaves_only_an_index_row_readers_skip(azurite_conn: str) -> None:
    alice = user()
    kept = new_ticket(table_repo(azurite_conn), alice)
    broken = repo_with(azurite_conn, failing_tickets=("create_entity",))
    with pytest.raises(ServiceRequestError):
        new_ticket(broken, alice)
    later = new_ticket(table_repo(azurite_conn), alice)
    owners = StorageClients(azurite_conn).table(names.TICKET_OWNERS)
    assert len(list(owners.query_entities(f"PartitionKey eq '{alice}'"))) == 3  # one points at nothing
    repo = table_repo(azurite_conn)
    assert [t.id for t in repo.list_for_owner(alice, None, 10, None).results] == [later.id, kept.id]
    first = repo.list_for_owner(alice, None, 1, None)
    rest = repo.list_for_owner(alice, None, 1, first.next_cursor)
    assert [t.id for t in first.results + rest.results] == [later.id, kept.id] and rest.next_cursor is None


def test_an_owner_list_never_shows_another_users_ticket_whatever_the_index_says(azurite_conn: str) -> None:
    repo, alice, mallory = table_repo(azurite_conn), user(), user()
    own = new_ticket(repo, alice)
    theirs = new_ticket(repo, mallory)
    owners = StorageClients(azurite_conn).table(names.TICKET_OWNERS)
    owners.upsert_entity({"PartitionKey": alice, "RowKey": ticket_key(theirs.id), "Id": theirs.id})
    assert [t.id for t in repo.list_for_owner(alice, None, 10, None).results] == [own.id]
    assert [t.id for t in repo.list_for_owner(mallory, None, 10, None).results] == [theirs.id]


def test_create_through_the_service_is_three_round_trips_with_its_throttle(azurite_conn: str) -> None:
    from shared.domain.models import Principal, TicketCreate
    from shared.services.tickets import TicketService

    service = TicketService(table_repo(azurite_conn, block=1000), lambda: NOW, WindowLimit(1000, 60))
    caller = Principal(sub=user())
    service.create(caller, TicketCreate(issue_type="warm-up"))  # id block claimed, window count known
    counts = []
    for _ in range(5):
        before = round_trips()
        service.create(caller, TicketCreate(issue_type="VPN drops"))
        counts.append(round_trips() - before)
    # The owner-index row with its window marker and the work-queue entries, then the ticket row.
    assert counts == [3] * 5


def limited(repo: TicketRepository, owner: str, limit: WindowLimit, at: datetime = NOW) -> Ticket | None:
    """A create counted in the owner's window; None when refused."""
    ticket = draft(repo, owner, at=at)
    try:
        repo.add(ticket, limit)
    except QuotaExceeded:
        return None
    return ticket


def test_a_limited_create_counts_in_its_window_and_a_refused_one_writes_nothing(
    repo: TicketRepository,
) -> None:
    alice, limit = user(), WindowLimit(3, 60)
    made = [limited(repo, alice, limit) for _ in range(5)]
    kept = [t for t in made if t is not None]
    assert [t is not None for t in made] == [True] * 3 + [False] * 2
    listed = repo.list_for_owner(alice, None, 10, None)
    assert [t.id for t in listed.results] == [t.id for t in reversed(kept)] and listed.next_cursor is None
    first = repo.list_for_owner(alice, None, 2, None)  # paging never meets the window markers
    rest = repo.list_for_owner(alice, None, 2, first.next_cursor)
    assert [t.id for t in first.results + rest.results] == [t.id for t in reversed(kept)]
    assert rest.next_cursor is None
    assert limited(repo, alice, limit, NOW + timedelta(minutes=1)) is not None  # the next window
    assert limited(repo, user(), limit) is not None  # other users have their own count


def test_limited_creates_are_exact_across_instances_under_concurrency(azurite_conn: str) -> None:
    alice, limit = user(), WindowLimit(10, 60)
    instances = [table_repo(azurite_conn), table_repo(azurite_conn)]
    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(lambda i: limited(instances[i % 2], alice, limit), range(40)))
    assert sum(t is not None for t in made) == 10
    listed = instances[0].list_for_owner(alice, None, 100, None).results
    assert sorted(t.id for t in listed) == sorted(t.id for t in made if t is not None)
