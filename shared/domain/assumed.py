"""The end of an auto-resolution's feedback window: a resolution still unanswered counts as assumed
(SPEC §7). An answer after that is still taken (shared/domain/feedback.py ANSWERABLE)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.domain.actions import SYSTEM
from shared.domain.followups import FollowupSkipped, skip_reason
from shared.domain.models import ActionType, HistoryEntry, ResolutionOutcome, Ticket


def request_id(action_seq: int) -> str:
    """The assumption's request in the ticket's idempotency ledger: once per auto-resolution."""
    return f"assume-{action_seq}"


def assume_skip_reason(ticket: Ticket, action_seq: int, since: Sequence[HistoryEntry]) -> str | None:
    """None when the resolution of the AUTO_RESOLVE at `action_seq` is still pending and may be
    assumed, else why not: answered, voided, no longer resolved, or not that resolution any more.
    Whether the follow-up went out does not matter (the window passed either way)."""
    reason = skip_reason(ticket, action_seq, since)
    return None if reason in (None, FollowupSkipped.ALREADY_SENT) else str(reason)


def assume(ticket: Ticket, action_seq: int, now: datetime) -> tuple[Ticket, HistoryEntry]:
    """Outcome pending → assumed, dated, by the system. Only for a resolution that may be assumed
    (assume_skip_reason None)."""
    resolution = ticket.resolution
    if resolution is None or resolution.outcome != ResolutionOutcome.PENDING:
        raise ValueError(f"ticket {ticket.id} has no pending resolution to assume")
    changed = resolution.model_copy(
        update={
            "outcome": ResolutionOutcome.ASSUMED,
            "outcome_at": now,
            "previous_outcome": ResolutionOutcome.PENDING,
        }
    )
    return ticket.advance(
        ActionType.RESOLUTION_ASSUMED,
        SYSTEM,
        now,
        {"resolution": changed},
        params={"action_seq": action_seq, "previous_outcome": ResolutionOutcome.PENDING.value},
    )
