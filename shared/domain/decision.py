"""The decision table of SPEC §6 step 2: analysis + thresholds → one action. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.analysis import Analysis
from shared.domain.models import ActionType

CRITICAL_SEVERITIES = frozenset({"critical", "high"})
CRITICAL_CATEGORIES = frozenset({"security", "outage", "data_loss"})

_AT_HIGH_CONFIDENCE = {
    "escalate": ActionType.ESCALATE,
    "assign_to_team": ActionType.ASSIGN_TO_TEAM,
    "request_clarification": ActionType.REQUEST_CLARIFICATION,
}


@dataclass(frozen=True)
class Thresholds:
    high: float = 0.8
    medium: float = 0.6
    success_probability: float = 0.8


def is_critical(analysis: Analysis) -> bool:
    severity = (analysis.analysis.severity or "").lower()
    category = (analysis.analysis.category or "").lower()
    return severity in CRITICAL_SEVERITIES or category in CRITICAL_CATEGORIES


def confidence_level(confidence: float, t: Thresholds) -> str:
    return "high" if confidence >= t.high else "medium" if confidence >= t.medium else "low"


def decide(analysis: Analysis, t: Thresholds) -> ActionType:
    confidence = analysis.confidence or 0.0
    recommended = analysis.recommended_action.lower()
    success = analysis.solution.success_probability
    level = confidence_level(confidence, t)
    if level == "high":
        if recommended == "auto_resolve":
            return (
                ActionType.AUTO_RESOLVE if success >= t.success_probability else ActionType.SCHEDULE_FOLLOWUP
            )
        return _AT_HIGH_CONFIDENCE.get(recommended, ActionType.SCHEDULE_FOLLOWUP)
    if is_critical(analysis):
        return ActionType.ESCALATE
    if level == "medium" and recommended == "auto_resolve":
        return ActionType.SCHEDULE_FOLLOWUP
    return ActionType.REQUEST_CLARIFICATION
