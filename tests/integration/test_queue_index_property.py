"""The work-queue index under random ticket changes, concurrent ones and crashes between its
writes and the commit (Table adapter on a private Azurite): after every step every queue lists
exactly the tickets whose current state matches, newest first, on every page.

QUEUE_PROPERTY_EXAMPLES (default 6) sets how many runs Hypothesis makes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from devhost import azurite
from shared.domain.models import ActionType, Priority, Status, Ticket
from shared.domain.queues import Queue
from shared.errors import ConcurrencyConflict
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.provision import provision
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.tickets import TableTicketRepository
from tests.integration.test_ticket_repository_contract import NOW, draft

STATUSES = [Status.NEW, Status.ESCALATED, Status.ASSIGNED, Status.CLOSED]
PRIORITIES = [Priority.MEDIUM, Priority.HIGH]
CRASHES = [None, "enter", "before_commit", "commit_lost", "after_commit", "read_before_commit"]


@pytest.fixture(scope="module")
def private_conn() -> Iterator[str]:
    """An Azurite of its own, so the status queues hold this test's tickets only."""
    server = azurite.start()
    try:
        provision(server.connection_string)
        yield server.connection_string
    finally:
        server.stop()


class Crashing:
    """A TableClient whose `armed` operation fails once: before it reaches storage, or after it
    landed (`landed`, a reply lost: the caller sees an error for a write that happened); or,
    with `before`, runs that first (a reader between the index write and the commit)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.armed: str | None = None
        self.landed = False
        self.before: Callable[[], object] | None = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self.armed:
            return attr

        def crash(*args: Any, **kwargs: Any) -> Any:
            self.armed = None
            if self.before is not None:
                self.before()
                return attr(*args, **kwargs)
            if self.landed:
                attr(*args, **kwargs)
            raise ServiceRequestError("the process died here")

        return crash


class Queues(RuleBasedStateMachine):
    conn = ""

    def __init__(self) -> None:
        super().__init__()
        service = TableServiceClient.from_connection_string(self.conn)
        for table in (names.TICKETS, names.TICKET_OWNERS, names.TICKET_QUEUES):
            service.delete_table(table)
            service.create_table(table)
        clients = StorageClients(self.conn)
        self.tickets = Crashing(clients.table(names.TICKETS))
        self.queues = Crashing(clients.table(names.TICKET_QUEUES))
        self.repo = TableTicketRepository(
            self.tickets,  # type: ignore[arg-type]
            clients.table(names.TICKET_OWNERS),
            TableIdAllocator(clients.table(names.COUNTERS)),
            self.queues,  # type: ignore[arg-type]
        )
        self.users = [f"user-{uuid.uuid4().hex[:6]}" for _ in range(2)]
        self.teams = ["network", "desk"]
        self.ids: list[int] = []
        self.crashes = 0

    @initialize()
    def first(self) -> None:
        self.create(0, None)

    # ---- changes ---------------------------------------------------------------------------

    @rule(user=st.integers(0, 1), crash=st.sampled_from([None, None, "enter", "insert", "insert_landed"]))
    def create(self, user: int, crash: str | None) -> None:
        ticket = draft(self.repo, self.users[user])
        self.ids.append(ticket.id)
        if crash == "enter":
            self.queues.armed = "submit_transaction"
        elif crash is not None:
            self.tickets.armed, self.tickets.landed = "create_entity", crash == "insert_landed"
        try:
            self.repo.add(ticket)
        except ServiceRequestError:
            self.crashes += 1

    @rule(
        pick=st.integers(0, 1000),
        status=st.sampled_from(STATUSES),
        team=st.sampled_from([None, "keep", "network", "desk"]),
        priority=st.sampled_from(PRIORITIES),
        crash=st.sampled_from(CRASHES),
        retry=st.booleans(),
    )
    def change(
        self, pick: int, status: Status, team: str | None, priority: Priority, crash: str | None, retry: bool
    ) -> None:
        ticket = self.repo.get(self.ids[pick % len(self.ids)])
        if ticket is None:
            return
        fields = self.fields(ticket, status, team, priority)
        if self.save(ticket, fields, crash) or not retry:
            return
        latest = self.repo.get(ticket.id)  # the retry, as the service or the host would make it
        assert latest is not None
        self.save(latest, fields, None)

    @rule(
        pick=st.integers(0, 1000),
        first=st.tuples(st.sampled_from(STATUSES), st.sampled_from(PRIORITIES)),
        second=st.tuples(st.sampled_from(STATUSES), st.sampled_from(PRIORITIES)),
        team=st.sampled_from([None, "network", "desk"]),
    )
    def race(
        self, pick: int, first: tuple[Status, Priority], second: tuple[Status, Priority], team: str | None
    ) -> None:
        """Two writers change the same version at once: one commits, the other conflicts."""
        ticket = self.repo.get(self.ids[pick % len(self.ids)])
        if ticket is None:
            return
        changes = [{"status": first[0], "priority": first[1], "assigned_team": team}]
        changes.append({"status": second[0], "priority": second[1], "assigned_team": None})

        def attempt(i: int) -> bool:
            changed, entry = ticket.advance(ActionType.STATUS_CHANGE, "sam", NOW, changes[i])
            try:
                self.repo.save(changed, [entry])
                return True
            except ConcurrencyConflict:
                return False

        with ThreadPoolExecutor(2) as pool:
            assert sum(pool.map(attempt, range(2))) == 1

    def fields(self, ticket: Ticket, status: Status, team: str | None, priority: Priority) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": status, "priority": priority}
        if team != "keep":
            fields["assigned_team"] = team
        return fields

    def save(self, ticket: Ticket, fields: dict[str, Any], crash: str | None) -> bool:
        """Whether the change reported success (a lost reply may have committed all the same)."""
        changed, entry = ticket.advance(ActionType.STATUS_CHANGE, "sam", NOW, fields)
        leave = self.repo._index.leave
        if crash == "enter":
            self.queues.armed = "submit_transaction"
        elif crash in ("before_commit", "commit_lost"):
            self.tickets.armed, self.tickets.landed = "submit_transaction", crash == "commit_lost"
        elif crash == "after_commit":
            self.repo._index.leave = lambda change: None  # type: ignore[method-assign]
        elif crash == "read_before_commit":  # readers pass the new entries before they count
            self.tickets.armed, self.tickets.before = "submit_transaction", self.read_everything
        try:
            self.repo.save(changed, [entry])
            return crash != "after_commit"
        except (ServiceRequestError, ConcurrencyConflict):
            self.crashes += 1
            return False
        finally:
            self.repo._index.leave = leave  # type: ignore[method-assign]
            self.tickets.armed = self.queues.armed = self.tickets.before = None

    # ---- what must hold after every step ----------------------------------------------------

    def read_everything(self) -> None:
        for queue in self.queues_to_check():
            self.repo.list_queue(queue, 100, None)

    def current(self) -> list[Ticket]:
        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(self.repo.get, self.ids))
        return sorted((t for t in found if t is not None), key=lambda t: -t.id)

    def queues_to_check(self) -> list[Queue]:
        return [
            Queue(status=status, **extra)
            for status in STATUSES
            for extra in (
                {},
                *({"assigned_team": team} for team in self.teams),
                *({"priority": p} for p in PRIORITIES),
                *({"owner": user} for user in self.users),
            )
        ]

    @invariant()
    def every_queue_lists_exactly_its_tickets_in_order(self) -> None:
        tickets = self.current()
        queues = self.queues_to_check()
        with ThreadPoolExecutor(4) as pool:
            pages = list(pool.map(lambda q: self.repo.list_queue(q, 100, None), queues))
        for queue, page in zip(queues, pages, strict=True):
            want = [t.id for t in tickets if queue.matches(t)]
            assert [t.id for t in page.results] == want, queue
            assert page.next_cursor is None

    @invariant()
    def paging_walks_the_same_list(self) -> None:
        tickets = self.current()
        status = STATUSES[len(self.ids) % len(STATUSES)]  # a different queue as tickets come
        for queue in (Queue(status=status), Queue(status=status, owner=self.users[0])):
            assert walk(self.repo.list_queue, queue, 2) == [t.id for t in tickets if queue.matches(t)]

    def teardown(self) -> None:
        """The oracle agrees: a rebuild finds nothing to add; a second one nothing at all."""
        tickets = self.current()
        added, _ = self.repo.rebuild_queues()
        assert added == 0
        assert self.repo.rebuild_queues() == (0, 0)
        for queue in self.queues_to_check():
            assert [t.id for t in self.repo.list_queue(queue, 100, None).results] == [
                t.id for t in tickets if queue.matches(t)
            ]


def walk(list_queue: Callable[[Queue, int, str | None], Any], queue: Queue, limit: int) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        page = list_queue(queue, limit, cursor)
        ids += [t.id for t in page.results]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def test_queues_stay_exact_under_random_changes_races_and_crashes(private_conn: str) -> None:
    Queues.conn = private_conn
    run_state_machine_as_test(
        Queues,
        settings=settings(
            max_examples=int(os.environ.get("QUEUE_PROPERTY_EXAMPLES", "6")),
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
