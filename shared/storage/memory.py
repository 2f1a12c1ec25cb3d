"""In-memory fakes of the storage ports, for fast unit tests of services."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

from shared.domain.models import HistoryEntry, Page, Status, Ticket
from shared.errors import ConcurrencyConflict
from shared.storage.keys import history_row, seq_of, ticket_id_of, ticket_key


class InMemoryTicketRepository:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._tickets: dict[int, Ticket] = {}
        self._entries: dict[int, dict[int, HistoryEntry]] = {}
        self._markers: set[tuple[int, str]] = set()

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def add(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.id in self._tickets:
                raise ConcurrencyConflict(f"ticket {ticket.id} exists")
            self._tickets[ticket.id] = ticket.model_copy(deep=True)
            self._entries[ticket.id] = {}

    def get(self, ticket_id: int) -> Ticket | None:
        with self._lock:
            ticket = self._tickets.get(ticket_id)
            return ticket.model_copy(deep=True) if ticket else None

    def save(self, ticket: Ticket, entries: Sequence[HistoryEntry] = (), markers: Sequence[str] = ()) -> None:
        with self._lock:
            stored = self._tickets.get(ticket.id)
            if stored is None or stored.version != ticket.version - 1:
                raise ConcurrencyConflict(f"ticket {ticket.id} changed concurrently")
            if any((ticket.id, m) in self._markers for m in markers):
                raise ConcurrencyConflict(f"ticket {ticket.id}: marker exists")
            self._tickets[ticket.id] = ticket.model_copy(deep=True)
            self._markers.update((ticket.id, m) for m in markers)
            for entry in entries:
                self._entries[ticket.id][entry.seq] = entry.model_copy(deep=True)

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        return self._page(lambda t: t.user == owner and (status is None or t.status == status), limit, cursor)

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        return self._page(lambda t: status is None or t.status == status, limit, cursor)

    def _page(self, keep, limit: int, cursor: str | None) -> Page:  # type: ignore[no-untyped-def]
        after = ticket_id_of(cursor) if cursor else None
        with self._lock:
            ids = sorted((i for i in self._tickets if after is None or i < after), reverse=True)
            found = [self._tickets[i].model_copy(deep=True) for i in ids if keep(self._tickets[i])]
        page = found[:limit]
        more = len(found) > limit
        return Page(results=page, next_cursor=ticket_key(page[-1].id) if more else None)

    def history(self, ticket_id: int, limit: int, cursor: str | None) -> Page:
        after = seq_of(cursor) if cursor else None
        with self._lock:
            entries = self._entries.get(ticket_id, {})
            seqs = sorted((s for s in entries if after is None or s < after), reverse=True)
            found = [entries[s].model_copy(deep=True) for s in seqs]
        page = found[:limit]
        more = len(found) > limit
        return Page(results=page, next_cursor=history_row(page[-1].seq) if more else None)

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None:
        with self._lock:
            entry = self._entries.get(ticket_id, {}).get(seq)
            return entry.model_copy(deep=True) if entry else None
