"""What each autonomous action (and each deferral) does to a ticket, as pure functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.analysis import Analysis, Details
from shared.domain.clarification import CLARIFYING_QUESTIONS
from shared.domain.models import ActionType, HistoryEntry, Priority, Resolution, Status, Ticket

AUTONOMOUS = frozenset(
    {
        ActionType.AUTO_RESOLVE,
        ActionType.ESCALATE,
        ActionType.ASSIGN_TO_TEAM,
        ActionType.REQUEST_CLARIFICATION,
        ActionType.SCHEDULE_FOLLOWUP,
    }
)
AGENT = "autonomous_agent"
SYSTEM = "system"
# The actors history entries and audit records name besides people: no caller may carry one of
# these names (or one that reads the same), or a change of theirs would pass for the agent's.
RESERVED_ACTORS = frozenset({AGENT, SYSTEM})


def reserved_actor(sub: str) -> bool:
    return sub.strip().casefold() in RESERVED_ACTORS


DEFAULT_TEAM = "service-desk"


def agent_summary(analysis: Analysis, action: ActionType, now: datetime) -> dict[str, Any]:
    """The `agent` field of a ticket: the last analysis (as the analyser said it) and what was decided."""
    said = analysis.as_dict()
    return {
        "confidence": said.get("confidence"),
        "recommended_action": said.get("recommended_action"),
        "reasoning": said.get("reasoning", ""),
        "analysis": said.get("analysis", {}),
        "solution": said.get("solution", {}),
        "knowledge_base_entries": said.get("knowledge_base_entries", []),
        "agent": said.get("agent", {}),
        "decided_action": action.value,
        "processed_at": now.isoformat(),
    }


def _changes(action: ActionType, analysis: Analysis) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ticket field updates and the action's parameters."""
    details = analysis.analysis
    solution = analysis.as_dict().get("solution", {})  # recorded as the analyser said it
    team = details.suggested_team or DEFAULT_TEAM
    if action == ActionType.AUTO_RESOLVE:
        resolution = Resolution(autonomous_action=action.value)
        return {"status": Status.RESOLVED, "resolution": resolution}, {"solution": solution}
    if action == ActionType.ESCALATE:
        priority = Priority.CRITICAL if details.severity == "critical" else Priority.HIGH
        return {"status": Status.ESCALATED, "priority": priority, "assigned_team": team}, {
            "priority": priority.value,
            "team": team,
        }
    if action == ActionType.ASSIGN_TO_TEAM:
        return {"status": Status.ASSIGNED, "assigned_team": team}, {"team": team}
    if action == ActionType.REQUEST_CLARIFICATION:
        questions = list(analysis.questions or CLARIFYING_QUESTIONS)
        return {"status": Status.PENDING_CLARIFICATION}, {"questions": questions}
    if action == ActionType.SCHEDULE_FOLLOWUP:
        return {"status": Status.IN_PROGRESS}, {"solution": solution}
    raise ValueError(f"{action} is not an autonomous action")


def act(
    ticket: Ticket,
    action: ActionType,
    analysis: Analysis,
    now: datetime,
    provenance: dict[str, Any],
) -> tuple[Ticket, HistoryEntry]:
    """Apply an autonomous action: the changed ticket and its history entry."""
    updates, params = _changes(action, analysis)
    if "resolution" in updates:  # dated by the action that created it: the day analytics count it on
        updates["resolution"] = updates["resolution"].model_copy(update={"resolved_at": now})
    changes = {**updates, "agent": agent_summary(analysis, action, now), "agent_processed": True}
    return ticket.advance(
        action, AGENT, now, changes, params={**params, **provenance}, reversible=True, **_judgement(analysis)
    )


def defer(
    ticket: Ticket,
    reason: str,
    decided: ActionType | None,
    analysis: Analysis | None,
    now: datetime,
    provenance: dict[str, Any],
) -> tuple[Ticket, HistoryEntry]:
    """No autonomous change: the ticket goes to the human queue, saying why."""
    changes: dict[str, Any] = {"status": Status.OPEN, "agent_processed": True}
    if analysis is not None and decided is not None:
        changes["agent"] = agent_summary(analysis, decided, now)
    params = {"reason": reason, "decided_action": decided.value if decided else None, **provenance}
    return ticket.advance(
        ActionType.DEFER_TO_HUMAN, SYSTEM, now, changes, params=params, **_judgement(analysis)
    )


def shadow(
    ticket: Ticket, decided: ActionType, analysis: Analysis, now: datetime, provenance: dict[str, Any]
) -> tuple[Ticket, HistoryEntry]:
    """Shadow mode: record what the agent would have done; the ticket itself stays as it is."""
    params = {"would_do": decided.value, **provenance}
    return ticket.advance(
        ActionType.SHADOW_DECISION, AGENT, now, params=params, touch=False, **_judgement(analysis)
    )


FOLLOWUP_UNRESOLVED = Analysis(
    analysis=Details(severity="high"), reasoning="The scheduled follow-up found it unresolved."
)


def followup_due(ticket: Ticket, action_seq: int) -> bool:
    """A scheduled follow-up still applies: the ticket is exactly as that SCHEDULE_FOLLOWUP left it.
    Resolved, or moved on since by a person or the agent, it needs nothing more."""
    return ticket.status == Status.IN_PROGRESS and ticket.version == action_seq


def escalate_unresolved(ticket: Ticket, now: datetime) -> tuple[Ticket, HistoryEntry]:
    """The follow-up check's escalation: done by the system, not the agent, so the ticket keeps the
    agent's last analysis (`agent`) and the entry says who acted."""
    updates, params = _changes(ActionType.ESCALATE, FOLLOWUP_UNRESOLVED)
    return ticket.advance(
        ActionType.ESCALATE,
        SYSTEM,
        now,
        {**updates, "agent_processed": True},
        params={**params, "trigger": "followup_check"},
        reversible=True,
        **_judgement(FOLLOWUP_UNRESOLVED),
    )


def _judgement(analysis: Analysis | None) -> dict[str, Any]:
    """What a history entry keeps of the analysis behind it: its confidence and reasoning."""
    if analysis is None:
        return {"confidence": None, "reasoning": ""}
    return {"confidence": analysis.confidence, "reasoning": analysis.reasoning}
