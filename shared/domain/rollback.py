"""An admin's rollback of an autonomous action, as a pure function.

What "the ticket changed since the action" means: a field the action set (status, assigned
team, priority) is no longer what the action left (its `after_state`), or the resolution it
created was answered (confirmed or failed). Bookkeeping that follows an action on its own, a
follow-up sent (`followup_sent_at`) or an unanswered resolution counted as assumed, is not a
change: rolling back over it loses nothing a person decided. A later change that set the very
same values (a forced re-run that decided alike) is not told apart; the rollback then restores
the state before the action all the same.

What it restores: the action's `before_state` status, team and priority. The resolution the
action created stays on the ticket, outcome VOIDED with `voided_at`, so the follow-up of an
auto-resolution (and analytics) find it voided; the rollback's new version makes a scheduled
check, which acts only on the version its action produced, do nothing. `agent_processed` and the
agent's last analysis are kept: the owner's own `process` request answers "skipped", because an
admin undid what the agent decided and the agent would likely decide the same again; staff
re-run it with `force`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.domain.actions import AUTONOMOUS
from shared.domain.models import (
    ActionType,
    HistoryEntry,
    Resolution,
    ResolutionOutcome,
    Storable,
    Ticket,
)

DEFAULT_REASON = "Manual rollback by admin"
RESTORED = ("status", "assigned_team", "priority")  # the fields an action sets and a rollback restores
ANSWERED = frozenset({ResolutionOutcome.CONFIRMED, ResolutionOutcome.FAILED})


class RollbackRequest(BaseModel):
    """The body of `POST /tickets/actions/{action_id}/rollback/` (may be empty)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000), Storable] | None = None
    force: bool = False


class RollbackRefused(Exception):
    """Why a rollback is refused; `code` is stable (`already_rolled_back`, `not_reversible`,
    `ticket_changed`), `extra` goes into the answer (`current` and `expected` of a changed ticket)."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code, self.detail, self.extra = code, detail, extra


def reversible(action: HistoryEntry) -> bool:
    """An autonomous action (by the agent, or the system's follow-up-check escalation) that was
    recorded as reversible; human changes, deferrals, shadow decisions and rollbacks are not."""
    return action.rollback_possible and action.action_type in AUTONOMOUS


def changed_since(ticket: Ticket, action: HistoryEntry) -> dict[str, dict[str, Any]] | None:
    """`{"current": ..., "expected": ...}` for what differs from what the action left; None when
    nothing a person decided changed since (see the module docstring)."""
    state = ticket.state()
    current = {f: state.get(f) for f in RESTORED if state.get(f) != action.after_state.get(f)}
    expected = {f: action.after_state.get(f) for f in current}
    created = action.after_state.get("resolution")
    if created is not None and ticket.resolution is not None and ticket.resolution.outcome in ANSWERED:
        current["resolution_outcome"] = ticket.resolution.outcome.value
        expected["resolution_outcome"] = created.get("outcome")
    return {"current": current, "expected": expected} if current else None


def _created_resolution(action: HistoryEntry) -> bool:
    after, before = action.after_state.get("resolution"), action.before_state.get("resolution")
    return after is not None and after != before


def rollback(
    ticket: Ticket, action: HistoryEntry, admin: str, reason: str | None, force: bool, now: datetime
) -> tuple[Ticket, HistoryEntry, HistoryEntry]:
    """Undo `action` on `ticket`: the changed ticket, its ROLLBACK entry (linked to the action by
    `action_id`; with `overwrote` when forced over a change) and the action marked rolled back.
    Raises RollbackRefused."""
    if action.ticket_id != ticket.id:
        raise ValueError("the action belongs to another ticket")
    if action.rolled_back:
        raise RollbackRefused(
            "already_rolled_back",
            f"Action {action.id} was already rolled back by {action.rolled_back_by}.",
        )
    if not reversible(action):
        raise RollbackRefused(
            "not_reversible", f"Action {action.id} ({action.action_type.value}) cannot be rolled back."
        )
    changed = changed_since(ticket, action)
    if changed is not None and not force:
        raise RollbackRefused(
            "ticket_changed",
            f"Ticket {ticket.id} changed since action {action.id}; send force to roll it back anyway.",
            **changed,
        )
    why = reason or DEFAULT_REASON
    updates: dict[str, Any] = {f: action.before_state.get(f) for f in RESTORED}
    voided: Resolution | None = None
    if _created_resolution(action) and ticket.resolution is not None:
        voided = ticket.resolution.model_copy(
            update={
                "outcome": ResolutionOutcome.VOIDED,
                "voided_at": now,
                "outcome_at": now,  # analytics move their figures by the change, as for feedback
                "previous_outcome": ticket.resolution.outcome,
            }
        )
        updates["resolution"] = voided
    params: dict[str, Any] = {
        "action_id": action.id,
        "action_type": action.action_type.value,
        "reason": why,
        "force": force,
        "restored": {f: action.before_state.get(f) for f in RESTORED},
    }
    if voided is not None:
        params["voided_resolution"] = voided.autonomous_action
    if changed is not None:
        params["overwrote"] = changed["current"]
        params["expected"] = changed["expected"]
    restored = Ticket.model_validate({**ticket.model_dump(), **updates})  # validates the restored values
    rolled, entry = ticket.advance(
        ActionType.ROLLBACK,
        admin,
        now,
        {f: getattr(restored, f) for f in updates},
        params=params,
        reasoning=why,
    )
    marked = action.model_copy(
        update={"rolled_back": True, "rolled_back_at": now, "rolled_back_by": admin, "rollback_reason": why}
    )
    return rolled, entry, marked
