"""Azure Table Storage adapters of the storage ports (layout in shared/storage/keys.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.domain.models import HistoryEntry, Page, Status, Ticket
from shared.errors import ConcurrencyConflict
from shared.storage.keys import (
    TICKET_ROW,
    history_row,
    owner_key,
    ticket_key,
    version_row,
)

ID_BLOCK_SIZE = 50


class TableIdAllocator:
    """Hands out ids from blocks claimed on one ETag-guarded counter row.

    One conditional write claims `block_size` ids for this process, so ids stay unique
    across instances at ~1/block_size round trips per id. Ids of a crashed instance's
    unused block are simply skipped.
    """

    def __init__(
        self, counters: TableClient, name: str = "ticket-id", block_size: int = ID_BLOCK_SIZE
    ) -> None:
        self._table = counters
        self._keys = ("ids", name)
        self._key = {"PartitionKey": "ids", "RowKey": name}
        self._block_size = block_size
        self._lock = threading.Lock()
        self._next = self._end = 0

    def next_id(self) -> int:
        with self._lock:
            if self._next >= self._end:
                self._next, self._end = self._claim_block()
            self._next += 1
            return self._next - 1

    def _claim_block(self) -> tuple[int, int]:
        for _ in range(100):
            try:
                row = self._table.get_entity(*self._keys)
            except ResourceNotFoundError:
                try:
                    self._table.create_entity({**self._key, "Next": 1 + self._block_size})
                    return 1, 1 + self._block_size
                except ResourceExistsError:
                    continue
            start = int(row["Next"])
            try:
                self._table.update_entity(
                    {**self._key, "Next": start + self._block_size},
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return start, start + self._block_size
            except ResourceModifiedError:
                continue
        raise ConcurrencyConflict("could not claim a block of ticket ids")


def _ticket_entity(ticket: Ticket) -> dict[str, Any]:
    return {
        "PartitionKey": ticket_key(ticket.id),
        "RowKey": TICKET_ROW,
        "Owner": ticket.user,
        "Status": ticket.status.value,
        "Version": ticket.version,
        "Data": ticket.model_dump_json(),
    }


def _to_ticket(entity: dict[str, Any]) -> Ticket:
    ticket = Ticket.model_validate_json(entity["Data"])
    ticket.version = int(entity["Version"])
    return ticket


def _entry_entity(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "PartitionKey": ticket_key(entry.ticket_id),
        "RowKey": history_row(entry.seq),
        "ActionType": entry.action_type.value,
        "Data": entry.model_dump_json(),
    }


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class TableTicketRepository:
    def __init__(self, tickets: TableClient, owners: TableClient, ids: TableIdAllocator) -> None:
        self._tickets = tickets
        self._owners = owners
        self._ids = ids
        self._readers = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ticket-read")

    def next_id(self) -> int:
        return self._ids.next_id()

    def add(self, ticket: Ticket) -> None:
        """Ticket row and version marker in one transaction, then the owner index (2 round trips)."""
        key = ticket_key(ticket.id)
        try:
            self._tickets.submit_transaction(
                [
                    ("create", _ticket_entity(ticket)),
                    ("create", {"PartitionKey": key, "RowKey": version_row(ticket.version)}),
                ]
            )
        except TableTransactionError as exc:
            raise ConcurrencyConflict(f"ticket {ticket.id} exists") from exc
        self._owners.upsert_entity({"PartitionKey": owner_key(ticket.user), "RowKey": key, "Id": ticket.id})

    def get(self, ticket_id: int) -> Ticket | None:
        try:
            return _to_ticket(self._tickets.get_entity(ticket_key(ticket_id), TICKET_ROW))
        except ResourceNotFoundError:
            return None

    def save(self, ticket: Ticket, entries: Sequence[HistoryEntry] = (), markers: Sequence[str] = ()) -> None:
        # Azurite ignores If-Match inside a batch, so the guard is an insert of the next
        # version's marker: a concurrent writer that committed this version first makes
        # the insert, and with it the whole transaction, fail.
        key = ticket_key(ticket.id)
        operations: list[Any] = [
            ("upsert", _ticket_entity(ticket), {"mode": UpdateMode.REPLACE}),
            ("create", {"PartitionKey": key, "RowKey": version_row(ticket.version)}),
        ]
        operations += [("create", {"PartitionKey": key, "RowKey": marker}) for marker in markers]
        operations += [("upsert", _entry_entity(e), {"mode": UpdateMode.REPLACE}) for e in entries]
        try:
            self._tickets.submit_transaction(operations)
        except TableTransactionError as exc:
            raise ConcurrencyConflict(f"ticket {ticket.id} changed concurrently") from exc

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        query = f"PartitionKey eq {_quote(owner_key(owner))}"
        if cursor:
            query += f" and RowKey gt {_quote(cursor)}"
        rows = self._owners.query_entities(query, select=["RowKey", "Id"], results_per_page=limit + 1)
        return self._collect(self._read_tickets(rows, limit + 1), status, limit)

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        query = f"RowKey eq '{TICKET_ROW}'"
        if status is not None:
            query += f" and Status eq {_quote(status.value)}"
        if cursor:
            query += f" and PartitionKey gt {_quote(cursor)}"
        rows = self._tickets.query_entities(query, results_per_page=limit + 1)
        return self._collect((_to_ticket(r) for r in rows), status, limit)

    def _read_tickets(self, index_rows: Iterator[Any], chunk: int) -> Iterator[Ticket]:
        """Point-read the tickets an owner index page names, in parallel, keeping order."""
        while True:
            ids = [int(row["Id"]) for _, row in zip(range(chunk), index_rows, strict=False)]
            if not ids:
                return
            for ticket in self._readers.map(self.get, ids):
                if ticket is not None:
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
        query = f"PartitionKey eq {_quote(key)} and RowKey gt {_quote(low)} and RowKey lt 'i'"
        entries: list[HistoryEntry] = []
        for row in self._tickets.query_entities(query, results_per_page=limit + 1):
            if len(entries) == limit:
                return Page(results=entries, next_cursor=history_row(entries[-1].seq))
            entries.append(HistoryEntry.model_validate_json(row["Data"]))
        return Page(results=entries, next_cursor=None)

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None:
        try:
            row = self._tickets.get_entity(ticket_key(ticket_id), history_row(seq))
        except ResourceNotFoundError:
            return None
        return HistoryEntry.model_validate_json(row["Data"])
