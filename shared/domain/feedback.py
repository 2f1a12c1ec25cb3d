"""The owner's answer to "did the fix hold?", as pure functions on a ticket and its resolution.

An answer is taken on a resolution that is pending, assumed (the window passed unanswered) or
already answered (the new answer replaces the old one); a voided resolution (rolled back), or
none, takes no answer. Every answer is recorded by a FEEDBACK_RECEIVED entry; a "no" on a
ticket that was done (resolved or closed) also reopens it, recorded by a REOPEN entry as a
second version step, so both commit in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from shared.domain.models import (
    ActionType,
    FeedbackAnswer,
    HistoryEntry,
    Priority,
    Resolution,
    ResolutionOutcome,
    Status,
    Storable,
    Ticket,
)

MAX_TEXT = 2000
DEFAULT_REOPEN_REASON = "The user reported the fix did not work."
# A ticket in one of these was done; a "no" hands it back to people. In any other status people
# already hold it (a reopen earlier, or staff moved it): the answer is recorded, their routing kept.
DONE = frozenset({Status.RESOLVED, Status.CLOSED})
# Outcomes an answer may be given on: pending, assumed (an answer after the window is still
# taken) and the answered ones (a new answer replaces the old one).
ANSWERABLE = frozenset(
    {
        ResolutionOutcome.PENDING,
        ResolutionOutcome.ASSUMED,
        ResolutionOutcome.CONFIRMED,
        ResolutionOutcome.FAILED,
    }
)
_PRIORITY_RANK = [Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.CRITICAL]


def _no_star_is_none(score: int | None) -> int | None:
    """The web client sends 0 when no star is picked."""
    return score or None


def _null_text_is_empty(text: Any) -> Any:
    return "" if text is None else text


Score = Annotated[int, Field(ge=0, le=5), AfterValidator(_no_star_is_none)]
FeedbackText = Annotated[
    str, BeforeValidator(_null_text_is_empty), StringConstraints(max_length=MAX_TEXT), Storable
]


class ResolutionFeedback(BaseModel):
    """`POST /tickets/{id}/resolution-feedback/`: strict, so `"true"`, `1`, `4.5` and `"five"` are
    refused rather than guessed at."""

    model_config = ConfigDict(extra="forbid", strict=True)

    resolution_confirmed: bool
    satisfaction_score: Score | None = None
    feedback_text: FeedbackText = ""


class NoResolution(Exception):
    """The ticket has no resolution an answer can be given on (none, or it was voided)."""


@dataclass(frozen=True)
class Answered:
    """What an answer did: the ticket, its new entries (FEEDBACK_RECEIVED, then REOPEN when it
    reopened the ticket), and whether it reopened it."""

    ticket: Ticket
    entries: list[HistoryEntry]

    @property
    def reopened(self) -> bool:
        return self.entries[-1].action_type == ActionType.REOPEN


def moved(resolution: Resolution, outcome: ResolutionOutcome, now: datetime) -> dict[str, Any]:
    """The fields of `resolution` that record a move to `outcome`: its time and what it moved from.
    Staying put (a confirmed answer replaced by another) is no move and keeps them."""
    if resolution.outcome == outcome:
        return {"outcome": outcome}
    return {"outcome": outcome, "outcome_at": now, "previous_outcome": resolution.outcome}


def answer(ticket: Ticket, feedback: ResolutionFeedback, by: str, now: datetime) -> Answered:
    """Record `feedback` on the ticket's resolution. Raises NoResolution.

    Yes: outcome `confirmed`, ticket `closed`. No: outcome `failed`; a ticket that was done is
    reopened (`escalated`, priority at least high, REOPEN entry), one people hold keeps their
    status and priority. A second answer replaces the first: the resolution keeps the answer it
    replaced (`previous_answer`), and each answer has its own FEEDBACK_RECEIVED entry.
    """
    resolution = ticket.resolution
    if resolution is None or resolution.outcome not in ANSWERABLE:
        raise NoResolution(f"ticket {ticket.id} has no resolution to answer")
    confirmed = feedback.resolution_confirmed
    earlier = _current_answer(resolution)
    outcome = ResolutionOutcome.CONFIRMED if confirmed else ResolutionOutcome.FAILED
    answered = resolution.model_copy(
        update={
            **moved(resolution, outcome, now),
            "resolution_confirmed": confirmed,
            "satisfaction_score": feedback.satisfaction_score,
            "feedback_text": feedback.feedback_text,
            "response_received_at": now,
            "previous_answer": earlier,
        }
    )
    changes: dict[str, Any] = {"resolution": answered}
    if confirmed:
        changes["status"] = Status.CLOSED
    params = {
        "confirmed": confirmed,
        "score": feedback.satisfaction_score,
        "replaced": earlier is not None,
        "previous_answer": earlier.model_dump(mode="json") if earlier else None,
        "previous_outcome": resolution.outcome.value,
    }
    ticket, received = ticket.advance(ActionType.FEEDBACK_RECEIVED, by, now, changes, params=params)
    if confirmed or ticket.status not in DONE:
        return Answered(ticket, [received])
    return Answered(*_reopen(ticket, feedback.feedback_text, by, now, received))


def _current_answer(resolution: Resolution) -> FeedbackAnswer | None:
    if resolution.resolution_confirmed is None or resolution.response_received_at is None:
        return None
    return FeedbackAnswer(
        resolution_confirmed=resolution.resolution_confirmed,
        satisfaction_score=resolution.satisfaction_score,
        answered_at=resolution.response_received_at,
    )


def _reopen(
    ticket: Ticket, text: str, by: str, now: datetime, received: HistoryEntry
) -> tuple[Ticket, list[HistoryEntry]]:
    """The second step of a "no" on a done ticket: back to people, escalated at high priority (a
    critical one stays critical)."""
    assert ticket.resolution is not None
    reason = text.strip() or DEFAULT_REOPEN_REASON
    priority = max(ticket.priority, Priority.HIGH, key=_PRIORITY_RANK.index)
    resolution = ticket.resolution.model_copy(
        update={
            "reopened": True,
            "reopened_at": now,
            "reopened_reason": reason,
            "reopen_seq": ticket.version + 1,
        }
    )
    changes = {"status": Status.ESCALATED, "priority": priority, "resolution": resolution}
    params = {
        "trigger": "resolution_feedback",
        "priority": priority.value,
        "from_status": ticket.status.value,
    }
    reopened, entry = ticket.advance(ActionType.REOPEN, by, now, changes, params=params, reasoning=reason)
    return reopened, [received, entry]
