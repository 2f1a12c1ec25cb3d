"""Storage ports. Each has an in-memory fake and a Table/Queue adapter sharing one contract suite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.domain.models import HistoryEntry, Page, Status, Ticket


class TicketRepository(Protocol):
    """Tickets and everything in their partition: history entries and version markers.

    Every change commits atomically through `save`, guarded by the ticket's version:
    a concurrent writer that got there first makes it raise ConcurrencyConflict.
    """

    def next_id(self) -> int:
        """A positive id never handed out before, by any instance."""

    def add(self, ticket: Ticket) -> None:
        """Store a new ticket (version 1) and index it under its owner."""

    def get(self, ticket_id: int) -> Ticket | None: ...

    def save(self, ticket: Ticket, entries: Sequence[HistoryEntry] = (), markers: Sequence[str] = ()) -> None:
        """Commit `ticket` (whose version is one more than the stored one) with new or updated
        history entries and insert-if-absent markers, all or nothing. Raises ConcurrencyConflict."""

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        """The owner's tickets, newest first, reading only the owner's index partition."""

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        """Every ticket, newest first (staff)."""

    def history(self, ticket_id: int, limit: int, cursor: str | None) -> Page:
        """History entries of one ticket, newest first."""

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None: ...
