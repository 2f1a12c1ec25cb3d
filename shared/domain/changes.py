"""What people do to a ticket, as pure functions: the changed ticket and its history entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.models import ActionType, HistoryEntry, Status, StatusChange, Ticket


def change_status(
    ticket: Ticket, change: StatusChange, by: str, now: datetime
) -> tuple[Ticket, HistoryEntry]:
    """A staff member's status change; a team or priority is changed only when given."""
    changes: dict[str, Any] = {"status": change.status}
    if change.assigned_team is not None:
        changes["assigned_team"] = change.assigned_team
    if change.priority is not None:
        changes["priority"] = change.priority
    return ticket.advance(
        ActionType.STATUS_CHANGE,
        by,
        now,
        changes,
        params=change.model_dump(mode="json", exclude_none=True),
        reasoning=change.reason,
    )


def owner_may(change: StatusChange) -> bool:
    """What a ticket's owner may do with the status route: close it (the web client's "mark as
    closed"), with a reason if they like, and nothing else: no other status, team or priority."""
    return change.status == Status.CLOSED and change.assigned_team is None and change.priority is None
