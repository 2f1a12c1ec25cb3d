"""The rollback of an autonomous action, as a pure function: every action type, the refusals, force.

No storage: an action is taken on a ticket in memory (the same domain functions the agent and the
follow-up check use), maybe followed by other changes, and then rolled back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import actions, changes
from shared.domain.analysis import Analysis
from shared.domain.models import (
    ActionType,
    HistoryEntry,
    Priority,
    ResolutionOutcome,
    Status,
    StatusChange,
    Ticket,
)
from shared.domain.rollback import DEFAULT_REASON, RollbackRefused, rollback

CREATED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
ACTED = CREATED + timedelta(hours=1)
NOW = CREATED + timedelta(hours=3)
ADMIN = "ada"


def analysis(action: str, severity: str = "medium") -> Analysis:
    return Analysis.model_validate(
        {
            "confidence": 0.9,
            "recommended_action": action,
            "reasoning": "Because.",
            "analysis": {"severity": severity, "category": "account", "suggested_team": "Identity"},
            "solution": {"steps": ["Reset it"], "success_probability": 0.9},
        }
    )


RECOMMENDED = {
    ActionType.AUTO_RESOLVE: "auto_resolve",
    ActionType.ESCALATE: "escalate",
    ActionType.ASSIGN_TO_TEAM: "assign_to_team",
    ActionType.REQUEST_CLARIFICATION: "request_clarification",
    ActionType.SCHEDULE_FOLLOWUP: "auto_resolve",
}


def a_ticket(**fields: Any) -> Ticket:
    base: dict[str, Any] = {
        "id": 7,
        "issue_type": "Password reset",
        "description": "I forgot my password",
        "category": "account",
        "tags": [],
        "status": Status.NEW,
        "user": "alice",
        "assigned_team": None,
        "priority": Priority.MEDIUM,
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    return Ticket.model_validate({**base, **fields})


def acted(action: ActionType, ticket: Ticket | None = None) -> tuple[Ticket, HistoryEntry]:
    return actions.act(
        ticket or a_ticket(), action, analysis(RECOMMENDED[action]), ACTED, {"request_id": "r"}
    )


@pytest.mark.parametrize("action", list(RECOMMENDED), ids=[a.value for a in RECOMMENDED])
def test_a_rollback_restores_the_state_before_the_action(action: ActionType) -> None:
    before = a_ticket(status=Status.OPEN, assigned_team="Desk", priority=Priority.LOW)
    after, entry = acted(action, before)
    assert after.state() != before.state()

    rolled, rb, marked = rollback(after, entry, ADMIN, "wrong call", False, NOW)

    assert (rolled.status, rolled.assigned_team, rolled.priority) == (Status.OPEN, "Desk", Priority.LOW)
    assert rolled.version == after.version + 1 and rolled.updated_at == NOW
    assert rolled.agent_processed and rolled.agent == after.agent  # only staff's force re-runs it
    assert (rb.seq, rb.action_type, rb.executed_by, rb.executed_at) == (
        rolled.version,
        ActionType.ROLLBACK,
        ADMIN,
        NOW,
    )
    assert rb.action_params["action_id"] == entry.id == f"7-{entry.seq}"
    assert rb.action_params["action_type"] == action.value and rb.action_params["reason"] == "wrong call"
    assert (
        rb.agent_reasoning == "wrong call"
        and not rb.rollback_possible
        and "overwrote" not in rb.action_params
    )
    assert rb.before_state == after.state() and rb.after_state == rolled.state()
    assert marked.model_dump(
        exclude={"rolled_back", "rolled_back_at", "rolled_back_by", "rollback_reason"}
    ) == (entry.model_dump(exclude={"rolled_back", "rolled_back_at", "rolled_back_by", "rollback_reason"}))
    assert (marked.rolled_back, marked.rolled_back_at, marked.rolled_back_by, marked.rollback_reason) == (
        True,
        NOW,
        ADMIN,
        "wrong call",
    )
    assert not entry.rolled_back and after.version == entry.seq  # the inputs are left as they were


def test_an_auto_resolution_keeps_its_resolution_voided() -> None:
    after, entry = acted(ActionType.AUTO_RESOLVE)
    followed = after.model_copy(
        update={"resolution": after.resolution.model_copy(update={"followup_sent_at": ACTED})}  # type: ignore[union-attr]
    )
    rolled, rb, _ = rollback(followed, entry, ADMIN, None, False, NOW)
    assert rolled.status == Status.NEW
    assert rolled.resolution is not None
    assert rolled.resolution.outcome == ResolutionOutcome.VOIDED and rolled.resolution.voided_at == NOW
    assert (
        rolled.resolution.outcome_at == NOW
        and rolled.resolution.previous_outcome == ResolutionOutcome.PENDING
    )
    assert rolled.resolution.followup_sent_at == ACTED  # a sent follow-up alone is no change, and is kept
    assert rb.action_params["voided_resolution"] == "AUTO_RESOLVE"
    assert rb.agent_reasoning == DEFAULT_REASON == rb.action_params["reason"]


@pytest.mark.parametrize("action", [a for a in RECOMMENDED if a != ActionType.AUTO_RESOLVE])
def test_an_action_without_a_resolution_leaves_the_resolution_alone(action: ActionType) -> None:
    after, entry = acted(action)
    rolled, rb, _ = rollback(after, entry, ADMIN, None, False, NOW)
    assert rolled.resolution is None and "voided_resolution" not in rb.action_params


def test_the_follow_up_checks_escalation_by_the_system_is_rolled_back_to_in_progress() -> None:
    scheduled, _ = acted(ActionType.SCHEDULE_FOLLOWUP)
    escalated, entry = actions.escalate_unresolved(scheduled, ACTED + timedelta(days=1))
    assert entry.executed_by == actions.SYSTEM and entry.action_type == ActionType.ESCALATE
    rolled, rb, marked = rollback(escalated, entry, ADMIN, None, False, NOW)
    assert (rolled.status, rolled.priority, rolled.assigned_team) == (
        Status.IN_PROGRESS,
        scheduled.priority,
        scheduled.assigned_team,
    )
    assert marked.rolled_back and rb.action_params["action_id"] == entry.id


def refusal(ticket: Ticket, entry: HistoryEntry, force: bool = False) -> RollbackRefused:
    with pytest.raises(RollbackRefused) as refused:
        rollback(ticket, entry, ADMIN, None, force, NOW)
    return refused.value


def test_an_action_already_rolled_back_is_refused_even_with_force() -> None:
    after, entry = acted(ActionType.ESCALATE)
    rolled, _, marked = rollback(after, entry, ADMIN, None, False, NOW)
    assert refusal(rolled, marked).code == "already_rolled_back"
    assert refusal(rolled, marked, force=True).code == "already_rolled_back"


def test_changes_that_are_not_autonomous_actions_are_not_reversible() -> None:
    ticket = a_ticket()
    human, status_change = changes.change_status(
        ticket, StatusChange(status=Status.IN_PROGRESS), "sam", ACTED
    )
    deferred, deferral = actions.defer(ticket, "agent_disabled", None, None, ACTED, {})
    shadowed, shadow = actions.shadow(ticket, ActionType.ESCALATE, analysis("escalate"), ACTED, {})
    for changed, entry in ((human, status_change), (deferred, deferral), (shadowed, shadow)):
        assert refusal(changed, entry, force=True).code == "not_reversible", entry.action_type
    after, entry = acted(ActionType.ESCALATE)
    rolled, rb, _ = rollback(after, entry, ADMIN, None, False, NOW)
    assert refusal(rolled, rb, force=True).code == "not_reversible"  # a rollback is not undone by rollback
    unmarked = entry.model_copy(update={"rollback_possible": False})
    assert refusal(after, unmarked).code == "not_reversible"


def test_a_human_change_since_the_action_is_refused_showing_current_and_expected() -> None:
    after, entry = acted(ActionType.ESCALATE)
    human, _ = changes.change_status(
        after,
        StatusChange(status=Status.IN_PROGRESS, priority=Priority.LOW),
        "sam",
        ACTED + timedelta(minutes=5),
    )
    refused = refusal(human, entry)
    assert refused.code == "ticket_changed"
    assert refused.extra == {
        "current": {"status": "in_progress", "priority": "low"},
        "expected": {"status": "escalated", "priority": "high"},
    }


def test_force_overrides_a_change_and_records_what_it_overwrote() -> None:
    after, entry = acted(ActionType.ASSIGN_TO_TEAM, a_ticket(assigned_team="Desk"))
    human, _ = changes.change_status(
        after, StatusChange(status=Status.IN_PROGRESS, assigned_team="Network"), "sam", ACTED
    )
    rolled, rb, marked = rollback(human, entry, ADMIN, "agent misrouted", True, NOW)
    assert (rolled.status, rolled.assigned_team) == (Status.NEW, "Desk")
    assert rb.action_params["force"] is True
    assert rb.action_params["overwrote"] == {"status": "in_progress", "assigned_team": "Network"}
    assert rb.action_params["expected"] == {"status": "assigned", "assigned_team": "Identity"}
    assert marked.rolled_back


@pytest.mark.parametrize("outcome", [ResolutionOutcome.CONFIRMED, ResolutionOutcome.FAILED])
def test_an_answered_resolution_is_a_change(outcome: ResolutionOutcome) -> None:
    after, entry = acted(ActionType.AUTO_RESOLVE)
    assert after.resolution is not None
    answered = after.model_copy(
        update={"resolution": after.resolution.model_copy(update={"outcome": outcome})}
    )
    refused = refusal(answered, entry)
    assert refused.code == "ticket_changed"
    assert refused.extra["current"] == {"resolution_outcome": outcome.value}
    rolled, rb, _ = rollback(answered, entry, ADMIN, None, True, NOW)
    assert rolled.resolution is not None and rolled.resolution.outcome == ResolutionOutcome.VOIDED
    assert rb.action_params["overwrote"] == {"resolution_outcome": outcome.value}


def test_an_assumed_resolution_is_no_change() -> None:
    after, entry = acted(ActionType.AUTO_RESOLVE)
    assert after.resolution is not None
    assumed = after.model_copy(
        update={"resolution": after.resolution.model_copy(update={"outcome": ResolutionOutcome.ASSUMED})}
    )
    rolled, _, _ = rollback(assumed, entry, ADMIN, None, False, NOW)
    assert rolled.resolution is not None and rolled.resolution.outcome == ResolutionOutcome.VOIDED


def test_the_action_must_belong_to_the_ticket() -> None:
    after, entry = acted(ActionType.ESCALATE)
    with pytest.raises(ValueError):
        rollback(after.model_copy(update={"id": 8}), entry, ADMIN, None, False, NOW)
