"""Every ticket change is a pure domain function returning the new ticket and its one history entry.

No storage: each function is called on a ticket in memory. Whatever the change, it produces the
next version, exactly one entry whose `seq` is that version, the state before and after, and who
executed it; and it leaves the ticket it was given as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.agent.embedded import EmbeddedAgent
from shared.domain import actions, changes
from shared.domain.analysis import Analysis
from shared.domain.clarification import CLARIFYING_QUESTIONS
from shared.domain.models import (
    ActionType,
    HistoryEntry,
    Priority,
    Resolution,
    Status,
    StatusChange,
    Ticket,
)

CREATED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
NOW = CREATED + timedelta(hours=3)
PROVENANCE = {"agent": {"kind": "embedded", "version": "kb-test"}, "request_id": "r-1"}

ANALYSIS = Analysis.model_validate(
    {
        "confidence": 0.91,
        "recommended_action": "auto_resolve",
        "reasoning": "Matches the password reset article.",
        "analysis": {"severity": "medium", "category": "account", "suggested_team": "Identity"},
        "solution": {"steps": ["Use the reset portal"], "success_probability": 0.9},
        "knowledge_base_entries": ["kb-1"],
        "agent": {"kind": "embedded", "version": "kb-test"},
    }
)


def a_ticket(**fields: Any) -> Ticket:
    base: dict[str, Any] = {
        "id": 42,
        "issue_type": "Password reset",
        "description": "I forgot my password",
        "category": "account",
        "tags": ["login"],
        "status": Status.OPEN,
        "user": "user-1",
        "assigned_team": "Original team",
        "priority": Priority.LOW,
        "created_at": CREATED,
        "updated_at": CREATED,
        "agent": {"decided_action": "SCHEDULE_FOLLOWUP", "confidence": 0.7},
        "version": 4,
    }
    return Ticket(**{**base, **fields})


Change = Callable[[Ticket], tuple[Ticket, HistoryEntry]]

# Every change the domain knows, with who must be recorded as having made it.
CHANGES: dict[str, tuple[Change, str]] = {
    **{
        f"act:{action.value}": (
            lambda t, action=action: actions.act(t, action, ANALYSIS, NOW, PROVENANCE),
            actions.AGENT,
        )
        for action in sorted(actions.AUTONOMOUS)
    },
    "defer": (
        lambda t: actions.defer(t, "rollout", ActionType.AUTO_RESOLVE, ANALYSIS, NOW, PROVENANCE),
        actions.SYSTEM,
    ),
    "defer_without_analysis": (
        lambda t: actions.defer(t, "agent_unavailable", None, None, NOW, PROVENANCE),
        actions.SYSTEM,
    ),
    "shadow": (
        lambda t: actions.shadow(t, ActionType.ESCALATE, ANALYSIS, NOW, PROVENANCE),
        actions.AGENT,
    ),
    "status_change": (
        lambda t: changes.change_status(t, StatusChange(status=Status.CLOSED, reason="Done"), "staff-1", NOW),
        "staff-1",
    ),
    "followup_escalation": (
        lambda t: actions.escalate_unresolved(t, NOW),
        actions.SYSTEM,
    ),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_every_change_is_the_next_version_with_exactly_one_entry(name: str) -> None:
    change, by = CHANGES[name]
    ticket = a_ticket(status=Status.IN_PROGRESS)
    before = ticket.model_copy(deep=True)

    result = change(ticket)

    assert isinstance(result, tuple) and len(result) == 2
    changed, entry = result
    assert isinstance(entry, HistoryEntry)  # one entry, not a list of them
    assert changed.version == ticket.version + 1 == 5
    assert entry.seq == changed.version and entry.ticket_id == ticket.id == changed.id
    assert entry.id == "42-5"
    assert entry.before_state == ticket.state()
    assert entry.after_state == changed.state()
    assert entry.executed_by == by
    assert entry.executed_at == NOW
    assert not entry.rolled_back
    # Pure: the ticket given is untouched, down to its nested fields.
    assert ticket == before and ticket.version == before.version == 4
    assert ticket.agent == before.agent


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_change_never_touches_what_the_ticket_is(name: str) -> None:
    change, _ = CHANGES[name]
    ticket = a_ticket(status=Status.IN_PROGRESS)

    changed, _ = change(ticket)

    fixed = {"id", "issue_type", "description", "category", "tags", "user", "created_at"}
    assert changed.model_dump(include=fixed) == ticket.model_dump(include=fixed)


def test_changes_chain_version_by_version() -> None:
    ticket = a_ticket(status=Status.IN_PROGRESS)
    seqs = []
    for name in sorted(CHANGES):
        ticket, entry = CHANGES[name][0](ticket)
        seqs.append(entry.seq)
    assert seqs == list(range(5, 5 + len(CHANGES)))
    assert ticket.version == seqs[-1]


def test_advance_bumps_the_version_applies_the_changes_and_records_them() -> None:
    ticket = a_ticket()

    changed, entry = ticket.advance(
        ActionType.STATUS_CHANGE,
        "someone",
        NOW,
        {"status": Status.RESOLVED, "priority": Priority.HIGH},
        params={"why": "test"},
        reasoning="because",
        confidence=0.5,
        reversible=True,
    )

    assert (changed.status, changed.priority, changed.updated_at) == (Status.RESOLVED, Priority.HIGH, NOW)
    assert changed.version == 5 and entry.seq == 5
    assert entry.before_state["status"] == "open" and entry.after_state["status"] == "resolved"
    assert entry.before_state["priority"] == "low" and entry.after_state["priority"] == "high"
    assert entry.action_params == {"why": "test"}
    assert (entry.agent_reasoning, entry.confidence_score, entry.rollback_possible) == ("because", 0.5, True)


def test_advance_cannot_be_told_a_version() -> None:
    """The version is the function's to bump: a caller's `version` in the changes is overruled."""
    changed, entry = a_ticket().advance(ActionType.STATUS_CHANGE, "someone", NOW, {"version": 99})
    assert changed.version == entry.seq == 5


def test_advance_without_touch_keeps_updated_at() -> None:
    ticket = a_ticket()
    changed, _ = ticket.advance(ActionType.SHADOW_DECISION, "someone", NOW, touch=False)
    assert changed.updated_at == CREATED
    assert changed.public() == ticket.public()  # all but the version


def test_advance_does_not_share_its_params_with_the_caller() -> None:
    params: dict[str, Any] = {"a": 1}
    _, entry = a_ticket().advance(ActionType.STATUS_CHANGE, "someone", NOW, params=params)
    params["a"] = 2
    assert entry.action_params == {"a": 1}


# Human status change


def test_status_change_sets_status_and_only_the_team_and_priority_given() -> None:
    ticket = a_ticket()

    changed, entry = changes.change_status(ticket, StatusChange(status=Status.ASSIGNED), "staff-1", NOW)

    assert changed.status == Status.ASSIGNED
    assert (changed.assigned_team, changed.priority) == ("Original team", Priority.LOW)
    assert changed.updated_at == NOW
    assert changed.agent == ticket.agent and changed.agent_processed == ticket.agent_processed
    assert entry.action_type == ActionType.STATUS_CHANGE
    assert entry.action_params == {"status": "assigned", "reason": ""}
    assert entry.rollback_possible is False and entry.confidence_score is None


def test_status_change_with_team_priority_and_reason() -> None:
    change = StatusChange(
        status=Status.ESCALATED, reason="VIP", assigned_team="Tier 2", priority=Priority.CRITICAL
    )

    changed, entry = changes.change_status(a_ticket(), change, "staff-2", NOW)

    assert (changed.status, changed.assigned_team, changed.priority) == (
        Status.ESCALATED,
        "Tier 2",
        Priority.CRITICAL,
    )
    assert entry.executed_by == "staff-2" and entry.agent_reasoning == "VIP"
    assert entry.action_params == {
        "status": "escalated",
        "reason": "VIP",
        "assigned_team": "Tier 2",
        "priority": "critical",
    }
    assert entry.before_state["assigned_team"] == "Original team"
    assert entry.after_state["assigned_team"] == "Tier 2"


# Agent actions, deferral, shadow


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (ActionType.AUTO_RESOLVE, Status.RESOLVED),
        (ActionType.ESCALATE, Status.ESCALATED),
        (ActionType.ASSIGN_TO_TEAM, Status.ASSIGNED),
        (ActionType.REQUEST_CLARIFICATION, Status.PENDING_CLARIFICATION),
        (ActionType.SCHEDULE_FOLLOWUP, Status.IN_PROGRESS),
    ],
)
def test_an_agent_action_records_its_analysis(action: ActionType, status: Status) -> None:
    changed, entry = actions.act(a_ticket(), action, ANALYSIS, NOW, PROVENANCE)

    assert changed.status == status and changed.agent_processed and changed.updated_at == NOW
    assert changed.agent is not None and changed.agent["decided_action"] == action.value
    assert entry.action_type == action and entry.rollback_possible
    assert (entry.confidence_score, entry.agent_reasoning) == (0.91, ANALYSIS.reasoning)
    assert entry.action_params.items() >= PROVENANCE.items()


def test_an_action_outside_the_autonomous_ones_is_refused() -> None:
    with pytest.raises(ValueError):
        actions.act(a_ticket(), ActionType.ROLLBACK, ANALYSIS, NOW, PROVENANCE)


def test_auto_resolve_starts_a_resolution() -> None:
    changed, _ = actions.act(a_ticket(), ActionType.AUTO_RESOLVE, ANALYSIS, NOW, PROVENANCE)
    assert changed.resolution == Resolution(autonomous_action="AUTO_RESOLVE", resolved_at=NOW)


def test_a_deferral_hands_the_ticket_to_people_and_says_why() -> None:
    changed, entry = actions.defer(a_ticket(), "cap_reached", ActionType.ESCALATE, ANALYSIS, NOW, PROVENANCE)

    assert changed.status == Status.OPEN and changed.agent_processed
    assert changed.agent is not None and changed.agent["decided_action"] == "ESCALATE"
    assert entry.action_type == ActionType.DEFER_TO_HUMAN and not entry.rollback_possible
    assert entry.action_params == {"reason": "cap_reached", "decided_action": "ESCALATE", **PROVENANCE}
    assert entry.confidence_score == 0.91


def test_a_deferral_without_analysis_keeps_the_last_one() -> None:
    ticket = a_ticket()
    changed, entry = actions.defer(ticket, "agent_unavailable", None, None, NOW, PROVENANCE)
    assert changed.agent == ticket.agent
    assert entry.confidence_score is None and entry.agent_reasoning == ""
    assert entry.action_params["decided_action"] is None


def test_a_shadow_decision_changes_nothing_but_the_version() -> None:
    ticket = a_ticket()

    changed, entry = actions.shadow(ticket, ActionType.AUTO_RESOLVE, ANALYSIS, NOW, PROVENANCE)

    assert changed.public() == ticket.public()  # updated_at included: nothing a person sees
    assert changed.version == ticket.version + 1
    assert entry.before_state == entry.after_state
    assert entry.action_type == ActionType.SHADOW_DECISION and not entry.rollback_possible
    assert entry.action_params == {"would_do": "AUTO_RESOLVE", **PROVENANCE}


# Clarifying questions: one list


def test_a_clarification_asks_the_domain_questions_unless_the_analysis_brings_its_own() -> None:
    _, entry = actions.act(a_ticket(), ActionType.REQUEST_CLARIFICATION, ANALYSIS, NOW, PROVENANCE)
    assert entry.action_params["questions"] == list(CLARIFYING_QUESTIONS)

    own = ANALYSIS.model_copy(update={"questions": ["Which printer?"]})
    _, entry = actions.act(a_ticket(), ActionType.REQUEST_CLARIFICATION, own, NOW, PROVENANCE)
    assert entry.action_params["questions"] == ["Which printer?"]


def test_a_recorded_list_of_questions_is_not_the_shared_one() -> None:
    _, entry = actions.act(a_ticket(), ActionType.REQUEST_CLARIFICATION, ANALYSIS, NOW, PROVENANCE)
    entry.action_params["questions"].append("changed")
    assert "changed" not in CLARIFYING_QUESTIONS


def test_the_embedded_agent_asks_the_same_questions() -> None:
    result = EmbeddedAgent().analyse({"issue_type": "help", "description": "it does not work"}).as_dict()
    assert result["recommended_action"] == "request_clarification"
    assert result["solution"]["steps"] == list(CLARIFYING_QUESTIONS)


# The follow-up check's escalation


def test_followup_is_due_only_on_the_version_the_followup_left_in_progress() -> None:
    assert actions.followup_due(a_ticket(status=Status.IN_PROGRESS, version=7), 7)
    assert not actions.followup_due(a_ticket(status=Status.IN_PROGRESS, version=8), 7)
    assert not actions.followup_due(a_ticket(status=Status.RESOLVED, version=7), 7)


def test_the_followup_escalation_is_the_systems_and_keeps_the_agents_analysis() -> None:
    ticket = a_ticket(status=Status.IN_PROGRESS)

    changed, entry = actions.escalate_unresolved(ticket, NOW)

    assert changed.status == Status.ESCALATED and changed.priority == Priority.HIGH
    assert changed.assigned_team == actions.DEFAULT_TEAM
    assert changed.agent == ticket.agent  # the system acted; the agent's last analysis stays
    assert changed.agent_processed and changed.updated_at == NOW
    assert entry.action_type == ActionType.ESCALATE and entry.executed_by == actions.SYSTEM
    assert entry.action_params == {
        "priority": "high",
        "team": actions.DEFAULT_TEAM,
        "trigger": "followup_check",
    }
    assert entry.agent_reasoning == "The scheduled follow-up found it unresolved."
    assert entry.confidence_score is None and entry.rollback_possible


def test_the_followup_escalation_is_what_the_check_recorded_before() -> None:
    """No change of behaviour: the same ticket and entry the check built by patching `act`'s result."""
    ticket = a_ticket(status=Status.IN_PROGRESS)
    analysis = Analysis.model_validate(
        {"analysis": {"severity": "high"}, "reasoning": "The scheduled follow-up found it unresolved."}
    )
    old_changed, old_entry = actions.act(
        ticket, ActionType.ESCALATE, analysis, NOW, {"trigger": "followup_check"}
    )
    old_changed.agent = ticket.agent
    old_entry.executed_by = actions.SYSTEM

    changed, entry = actions.escalate_unresolved(ticket, NOW)

    assert changed == old_changed and changed.version == old_changed.version
    assert entry == old_entry
