"""Work queues: the filtered ticket lists kept by maintained indexes (TicketRepository.list_queue).

A queue is a status, optionally narrowed to one team, one priority or one owner (a user's own
list by status). Those are the combinations the indexes keep; any other filter is refused
(TicketService.list), so no page ever has to scan for rare matches.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.domain.models import Priority, Status, Ticket


class Queue(BaseModel):
    """At most one of `assigned_team`, `priority`, `owner` narrows the status."""

    model_config = ConfigDict(frozen=True)

    status: Status
    assigned_team: str | None = None
    priority: Priority | None = None
    owner: str | None = None

    @property
    def name(self) -> str:
        """Names the queue, short (a cursor carries it, so a cursor works for its queue only)."""
        fields = [self.status.value, self.assigned_team, self.priority, self.owner]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]

    def matches(self, ticket: Ticket) -> bool:
        return self.matches_state(ticket.user, ticket.state())

    def matches_state(self, owner: str, state: dict[str, Any]) -> bool:
        """`state` as in Ticket.state() (and a history entry's before/after states)."""
        if state.get("status") != self.status.value:
            return False
        if self.assigned_team is not None and state.get("assigned_team") != self.assigned_team:
            return False
        if self.priority is not None and state.get("priority") != self.priority.value:
            return False
        return self.owner is None or owner == self.owner


def queues_of(owner: str, state: dict[str, Any]) -> list[Queue]:
    """Every queue a ticket in `state` belongs to: its status, status and team (when it has one),
    status and priority, and its owner's list by status."""
    status = Status(state["status"])
    found = [
        Queue(status=status),
        Queue(status=status, priority=Priority(state.get("priority") or Priority.MEDIUM.value)),
        Queue(status=status, owner=owner),
    ]
    if state.get("assigned_team") is not None:
        found.append(Queue(status=status, assigned_team=state["assigned_team"]))
    return found
