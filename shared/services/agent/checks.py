"""The follow-up check of the agent pipeline: a scheduled follow-up that finds its ticket still
unresolved escalates it."""

from __future__ import annotations

from shared.domain import actions
from shared.errors import ConcurrencyConflict
from shared.ports import Clock, TicketRepository

SAVE_ATTEMPTS = 3


class CheckService:
    """The later check of a SCHEDULE_FOLLOWUP: escalate a ticket that is still not resolved."""

    def __init__(self, tickets: TicketRepository, clock: Clock) -> None:
        self._tickets, self._clock = tickets, clock

    def run(self, ticket_id: int, action_seq: int) -> str:
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
