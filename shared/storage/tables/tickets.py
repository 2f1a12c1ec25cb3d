"""Tickets, their history and owner index (TicketRepository) in the tickets and ticketowners tables;
`save` also commits the ledger's record of the request that made the change (see ledger.py), and
keeps the work-queue index (ticketqueues, see queues.py) around each commit."""

from __future__ import annotations

import contextvars
import json
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.domain.models import HistoryEntry, Page, RequestRecord, Status, Ticket
from shared.domain.queues import Queue
from shared.errors import ConcurrencyConflict
from shared.ports import MAX_OWNER_KEY, QuotaExceeded, WindowLimit, WindowUsage, check_new_entries
from shared.storage.clients import client_options
from shared.storage.keys import (
    CREATE_MARKERS,
    TICKET_ROW,
    create_marker_row,
    history_row,
    owner_key,
    request_row,
    ticket_key,
)
from shared.storage.lean import LeanTableClient
from shared.storage.names import TICKET_QUEUES
from shared.storage.sizes import AGENT_SUMMARY_UNITS, TABLE_STRING_UNITS, json_units, storable_json
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.ledger import record_entity, to_record
from shared.storage.tables.queues import ORPHAN_AGE, Change, TableQueueIndex, change_of, entries_of
from shared.storage.tables.rows import REPLACE, Row, quote, stored_json

CREATE_COUNT_ATTEMPTS = 20


def _ticket_entity(ticket: Ticket) -> dict[str, Any]:
    """The ticket row. Each part that can grow has a string property of its own, so each fits
    in one (32K UTF-16 units; see "Stored sizes" in shared/domain/models.py): the description,
    raw (10,000 characters take at most 20,000 units; as JSON up to 60,000), the resolution
    (feedback text), and the agent's summary, shrunk to AGENT_SUMMARY_UNITS if it ever came
    out larger. Data keeps the rest but the version (Version has it), a third of a property at most,
    with room for new fields."""
    entity = {
        "PartitionKey": ticket_key(ticket.id),
        "RowKey": TICKET_ROW,
        "Owner": ticket.user,
        "Status": ticket.status.value,
        "Version": ticket.version,
        "Description": ticket.description,
        "Data": stored_json(
            ticket.model_dump(mode="json", exclude={"description", "agent", "resolution", "version"})
        ),
    }
    if ticket.agent is not None:
        entity["Agent"] = stored_json(storable_json(ticket.agent, AGENT_SUMMARY_UNITS))
    if ticket.resolution is not None:
        entity["Resolution"] = stored_json(ticket.resolution.model_dump(mode="json"))
    return entity


def _to_ticket(entity: dict[str, Any]) -> Ticket:
    data = json.loads(entity["Data"])
    # Rows written before the description, agent and resolution had properties of their own hold them in Data.
    data["description"] = entity.get("Description", data.get("description", ""))
    for prop, field in (("Agent", "agent"), ("Resolution", "resolution")):
        if prop in entity:
            data[field] = json.loads(entity[prop])
    return Ticket.model_validate({**data, "version": int(entity["Version"])})


def _entry_entity(entry: HistoryEntry) -> dict[str, Any]:
    """A history entry row. The states before and after the change each hold a whole resolution
    (feedback text included), so each has a property of its own; the free text in Data (the
    reasoning and the parameters an agent or a person supplied) is shortened if Data would not
    fit, so that a change can always be committed."""
    data = entry.model_dump(mode="json", exclude={"before_state", "after_state"})
    fixed = json_units({**data, "agent_reasoning": "", "action_params": {}})
    free = storable_json(
        {"agent_reasoning": data["agent_reasoning"], "action_params": data["action_params"]},
        TABLE_STRING_UNITS - fixed - 64,
    )
    return {
        "PartitionKey": ticket_key(entry.ticket_id),
        "RowKey": history_row(entry.seq),
        "ActionType": entry.action_type.value,
        "Before": stored_json(entry.before_state),
        "After": stored_json(entry.after_state),
        "Data": stored_json({**data, "agent_reasoning": "", "action_params": {}, **free}),
    }


def _to_entry(entity: dict[str, Any]) -> HistoryEntry:
    data = json.loads(entity["Data"])
    if "Before" in entity:  # rows written before the states had properties of their own hold them in Data
        data["before_state"], data["after_state"] = json.loads(entity["Before"]), json.loads(entity["After"])
    return HistoryEntry.model_validate(data)


class TableTicketRepository:
    def __init__(
        self,
        tickets: TableClient,
        owners: TableClient,
        ids: TableIdAllocator,
        queues: TableClient | None = None,
    ) -> None:
        self._tickets = tickets
        self._owners = owners
        self._ids = ids
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ticket-io")
        if queues is None:  # the queue index's table in the tickets' account
            queues = LeanTableClient(
                tickets.url, TICKET_QUEUES, credential=tickets.credential, **client_options()
            )
        self._index = TableQueueIndex(queues, self._pool)
        self._lock = threading.Lock()
        self._creates_seen: dict[tuple[str, int], set[int]] = {}

    def owner_fits(self, owner: str) -> bool:
        return len(owner_key(owner)) <= MAX_OWNER_KEY

    def next_id(self) -> int:
        return self._ids.next_id()

    def add(self, ticket: Ticket, limit: WindowLimit | None = None) -> WindowUsage | None:
        """The owner-index row (with a limit: counted in the owner's window, one transaction) and
        the ticket's work-queue entries in parallel, then the ticket row: 3 round trips, 2 in time.

        No failure leaves a ticket its owner cannot list or a queue misses: the index rows come
        first, and rows whose ticket insert failed point at nothing, which readers skip. The
        queue entries stay then (an insert that timed out may have landed: its ticket needs them;
        `manage index rebuild` removes those of tickets that never came); a create refused before
        its insert (by its limit, or a failed index write) takes them back (best effort).
        """
        index = {"PartitionKey": owner_key(ticket.user), "RowKey": ticket_key(ticket.id), "Id": ticket.id}
        change = Change(enter=entries_of(ticket.id, ticket.user, ticket.state(), ticket.version))
        queued = self._pool.submit(self._index.enter, change)
        usage = None
        try:
            if limit is not None:
                usage = self._count_create(index, ticket, limit)
            else:
                self._owners.upsert_entity(index)
            queued.result()
        except BaseException:
            queued.exception()  # settle the queue write either way, then undo it
            self._index.discard(change.enter)
            raise
        self._insert_ticket(ticket)
        return usage

    def _insert_ticket(self, ticket: Ticket) -> None:
        try:
            self._tickets.create_entity(_ticket_entity(ticket))
        except ResourceExistsError as exc:
            raise ConcurrencyConflict(f"ticket {ticket.id} exists") from exc

    def _count_create(self, index: Row, ticket: Ticket, limit: WindowLimit) -> WindowUsage:
        """Write the index row together with a marker taking one of the `limit.amount` places of
        the owner's window: one entity-group transaction in the owner's partition.

        A marker is inserted, never overwritten, so two creates that pick the same place cannot
        both commit (Azurite honours the insert inside a batch, unlike If-Match), and there are
        only `amount` places: the count is exact. Places are picked at random among those not
        known to be taken, so concurrent creates rarely collide; a loser reads the window's
        markers and picks again, and with every place taken nothing is written. The places this
        instance knows are taken save the read: they can only be fewer than the truth (a
        window only fills up), which costs one failed insert, never a wrong answer; and a window
        it knows is full is refused without a request.
        """
        owner, window = str(index["PartitionKey"]), limit.window(ticket.created_at)
        with self._lock:
            taken = set(self._creates_seen.get((owner, window), ()))
        for _ in range(CREATE_COUNT_ATTEMPTS):
            if len(taken) >= limit.amount:
                raise QuotaExceeded(limit.usage(window, limit.amount + 1))
            place = random.randint(1, limit.amount)
            while place in taken:
                place = random.randint(1, limit.amount)
            marker = {"PartitionKey": owner, "RowKey": create_marker_row(window, place)}
            try:
                self._owners.submit_transaction([("upsert", index, REPLACE), ("create", marker)])
            except TableTransactionError as exc:
                if getattr(exc, "error_code", None) != "EntityAlreadyExists":
                    raise
                taken = self._taken_places(owner, window)
                continue
            taken.add(place)
            with self._lock:
                self._creates_seen = {k: v for k, v in self._creates_seen.items() if k[1] >= window}
                self._creates_seen[(owner, window)] = taken | self._creates_seen.get((owner, window), set())
            return limit.usage(window, len(taken))
        raise ConcurrencyConflict(f"the creates of {owner} stayed contended")

    def _taken_places(self, owner: str, window: int) -> set[int]:
        low, high = create_marker_row(window, 0), create_marker_row(window + 1, 0)
        query = f"PartitionKey eq {quote(owner)} and RowKey gt {quote(low)} and RowKey lt {quote(high)}"
        rows = self._owners.query_entities(query, select=["RowKey"])
        return {int(row["RowKey"].rsplit("-", 1)[1]) for row in rows}

    def get(self, ticket_id: int) -> Ticket | None:
        try:
            return _to_ticket(self._tickets.get_entity(ticket_key(ticket_id), TICKET_ROW))
        except ResourceNotFoundError:
            return None

    def save(
        self,
        ticket: Ticket,
        entries: Sequence[HistoryEntry],
        request: RequestRecord | None = None,
        updated: Sequence[HistoryEntry] = (),
        *,
        before_commit: Callable[[], None] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        # Azurite ignores If-Match inside a batch, so the guard is the insert of the new versions'
        # history entries: a concurrent writer that committed one of these versions first makes
        # its insert, and with it the whole transaction, fail.
        check_new_entries(ticket, entries)
        operations: list[Any] = [("upsert", _ticket_entity(ticket), {"mode": UpdateMode.REPLACE})]
        operations += [("create", _entry_entity(e)) for e in entries]
        operations += [("upsert", _entry_entity(e), REPLACE) for e in updated]
        if request is not None:
            operations.append(("upsert", record_entity(ticket.id, request), REPLACE))
        queues = change_of(ticket, entries[0].before_state, entries[0].seq - 1)
        self._beside(lambda: self._index.enter(queues), before_commit)  # before the commit: queues.py
        try:
            self._tickets.submit_transaction(operations)
        except TableTransactionError as exc:
            if getattr(exc, "error_code", None) != "EntityAlreadyExists":
                raise
            raise ConcurrencyConflict(f"ticket {ticket.id} changed concurrently") from exc
        self._beside(lambda: self._index.leave(queues), after_commit)

    def _beside(self, own: Callable[[], None], theirs: Callable[[], None] | None) -> None:
        """Run both at once; once both are done, raise the first error (ours first). Theirs runs in
        the caller's context (the invocation id its log records carry, Sentry's scope)."""
        if theirs is None:
            own()
            return
        running = self._pool.submit(contextvars.copy_context().run, theirs)
        try:
            own()
        finally:
            error = running.exception()
        if error is not None:
            raise error

    def get_with_entry(self, ticket_id: int, seq: int) -> tuple[Ticket | None, HistoryEntry | None]:
        key, row = ticket_key(ticket_id), history_row(seq)
        query = f"PartitionKey eq {quote(key)} and (RowKey eq '{TICKET_ROW}' or RowKey eq {quote(row)})"
        ticket = entry = None
        for entity in self._tickets.query_entities(query):
            if entity["RowKey"] == TICKET_ROW:
                ticket = _to_ticket(entity)
            else:
                entry = _to_entry(entity)
        return ticket, entry

    def get_with_request(self, ticket_id: int, request_id: str) -> tuple[Ticket | None, RequestRecord | None]:
        key, row = ticket_key(ticket_id), request_row(request_id)
        query = f"PartitionKey eq {quote(key)} and (RowKey eq '{TICKET_ROW}' or RowKey eq {quote(row)})"
        ticket = record = None
        for entity in self._tickets.query_entities(query):
            if entity["RowKey"] == TICKET_ROW:
                ticket = _to_ticket(entity)
            else:
                record = to_record(entity)
        return ticket, record

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        query = f"PartitionKey eq {quote(owner_key(owner))} and RowKey lt {quote(CREATE_MARKERS)}"
        if cursor:
            query += f" and RowKey gt {quote(cursor)}"
        rows = self._owners.query_entities(query, select=["RowKey", "Id"], results_per_page=limit + 1)
        return self._collect(self._read_tickets(rows, limit + 1, owner), status, limit)

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        query = f"RowKey eq '{TICKET_ROW}'"
        if status is not None:
            query += f" and Status eq {quote(status.value)}"
        if cursor:
            query += f" and PartitionKey gt {quote(cursor)}"
        rows = self._tickets.query_entities(query, results_per_page=limit + 1)
        return self._collect((_to_ticket(r) for r in rows), status, limit)

    def list_queue(self, queue: Queue, limit: int, cursor: str | None) -> Page:
        return self._index.page(queue, limit, cursor, lambda ids: list(self._pool.map(self.get, ids)))

    def rebuild_queues(self, orphan_age: timedelta = ORPHAN_AGE) -> tuple[int, int]:
        """Rebuild the work-queue index from the tickets: (entries added, entries removed)."""
        return self._index.rebuild(self._tickets, self.get, _to_ticket, orphan_age)

    def _read_tickets(self, index_rows: Iterator[Any], chunk: int, owner: str) -> Iterator[Ticket]:
        """Point-read the tickets an owner index page names, in parallel, keeping order.

        The index is a secondary view: a row whose ticket does not exist (its insert failed)
        or is not the owner's (a stale or forged row) is skipped, never shown."""
        while True:
            ids = [int(row["Id"]) for _, row in zip(range(chunk), index_rows, strict=False)]
            if not ids:
                return
            for ticket in self._pool.map(self.get, ids):
                if ticket is not None and ticket.user == owner:
                    yield ticket

    @staticmethod
    def _collect(tickets: Iterator[Ticket], status: Status | None, limit: int) -> Page:
        page: list[Ticket] = []
        for ticket in tickets:
            if status is not None and ticket.status != status:
                continue
            if len(page) == limit:
                return Page(results=page, next_cursor=ticket_key(page[-1].id))
            page.append(ticket)
        return Page(results=page, next_cursor=None)

    def history(self, ticket_id: int, limit: int, cursor: str | None) -> Page:
        key = ticket_key(ticket_id)
        low = cursor or "h"
        query = f"PartitionKey eq {quote(key)} and RowKey gt {quote(low)} and RowKey lt 'i'"
        entries: list[HistoryEntry] = []
        for row in self._tickets.query_entities(query, results_per_page=limit + 1):
            if len(entries) == limit:
                return Page(results=entries, next_cursor=history_row(entries[-1].seq))
            entries.append(_to_entry(row))
        return Page(results=entries, next_cursor=None)

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None:
        try:
            row = self._tickets.get_entity(ticket_key(ticket_id), history_row(seq))
        except ResourceNotFoundError:
            return None
        return _to_entry(row)
