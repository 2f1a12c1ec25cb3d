"""The follow-up check of the agent pipeline: a scheduled follow-up that finds its ticket still
unresolved escalates it."""

from __future__ import annotations

from datetime import datetime

from shared.domain import actions
from shared.domain.due import DueKind
from shared.errors import ConcurrencyConflict
from shared.ports import Clock, DueIndex, TicketRepository

SAVE_ATTEMPTS = 3


class CheckService:
    """The later check of a SCHEDULE_FOLLOWUP: escalate a ticket that is still not resolved.

    The sweeper sends it when its due-index item is due (`due_at` names the item); the check
    removes the item once it is done, escalated or moot, so a message lost before that is sent
    again. Running twice is harmless: it acts only while the ticket is at `action_seq`."""

    def __init__(self, tickets: TicketRepository, clock: Clock, due: DueIndex) -> None:
        self._tickets, self._clock, self._due = tickets, clock, due

    def run(self, ticket_id: int, action_seq: int, due_at: datetime | None = None) -> str:
        outcome = self._check(ticket_id, action_seq)
        if due_at is not None:
            self._due.remove(DueKind.CHECK, ticket_id, action_seq, due_at)
        return outcome

    def _check(self, ticket_id: int, action_seq: int) -> str:
        for _ in range(SAVE_ATTEMPTS):
            ticket = self._tickets.get(ticket_id)
            if ticket is None:
                return "missing"
            if not actions.followup_due(ticket, action_seq):
                return "not_needed"  # resolved, or a person or the agent moved it on since
            changed, entry = actions.escalate_unresolved(ticket, self._clock())
            try:
                self._tickets.save(changed, [entry])
                return "escalated"
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"ticket {ticket_id} kept changing during its follow-up check")
