"""The decision table of SPEC §6, every branch, and the rollout hash."""

from __future__ import annotations

import pytest

from shared.domain.analysis import Analysis
from shared.domain.decision import Thresholds, confidence_level, decide, is_critical
from shared.domain.models import ActionType as A
from shared.domain.rollout import bucket, in_rollout

T = Thresholds(high=0.8, medium=0.6, success_probability=0.8)


def analysis(
    confidence: float, action: str, success: float = 0.9, severity: str = "low", category: str = "vpn"
) -> Analysis:
    return Analysis.model_validate(
        {
            "confidence": confidence,
            "recommended_action": action,
            "analysis": {"severity": severity, "category": category},
            "solution": {"success_probability": success},
        }
    )


@pytest.mark.parametrize(
    ("confidence", "action", "success", "severity", "category", "expected"),
    [
        # confidence >= high
        (0.8, "auto_resolve", 0.8, "low", "vpn", A.AUTO_RESOLVE),
        (0.95, "auto_resolve", 0.79, "low", "vpn", A.SCHEDULE_FOLLOWUP),
        (0.9, "escalate", 0.9, "low", "vpn", A.ESCALATE),
        (0.9, "assign_to_team", 0.9, "low", "vpn", A.ASSIGN_TO_TEAM),
        (0.9, "request_clarification", 0.9, "low", "vpn", A.REQUEST_CLARIFICATION),
        (0.9, "monitor", 0.9, "low", "vpn", A.SCHEDULE_FOLLOWUP),
        (
            0.9,
            "auto_resolve",
            0.9,
            "critical",
            "security",
            A.AUTO_RESOLVE,
        ),  # the table trusts high confidence
        # medium <= confidence < high
        (0.6, "auto_resolve", 0.9, "critical", "vpn", A.ESCALATE),
        (0.7, "auto_resolve", 0.9, "low", "security", A.ESCALATE),
        (0.7, "assign_to_team", 0.9, "high", "vpn", A.ESCALATE),
        (0.7, "auto_resolve", 0.9, "low", "data_loss", A.ESCALATE),
        (0.79, "auto_resolve", 0.99, "medium", "vpn", A.SCHEDULE_FOLLOWUP),
        (0.7, "escalate", 0.9, "medium", "vpn", A.REQUEST_CLARIFICATION),
        (0.7, "assign_to_team", 0.9, "low", "vpn", A.REQUEST_CLARIFICATION),
        # below medium
        (0.59, "auto_resolve", 0.9, "high", "vpn", A.ESCALATE),
        (0.1, "anything", 0.1, "low", "outage", A.ESCALATE),
        (0.59, "auto_resolve", 0.99, "low", "vpn", A.REQUEST_CLARIFICATION),
        (0.0, "escalate", 0.0, "medium", "other", A.REQUEST_CLARIFICATION),
    ],
)
def test_decision_table(confidence, action, success, severity, category, expected) -> None:  # type: ignore[no-untyped-def]
    assert decide(analysis(confidence, action, success, severity, category), T) == expected


def test_thresholds_come_from_settings() -> None:
    strict = Thresholds(high=0.95, medium=0.9, success_probability=0.99)
    assert decide(analysis(0.9, "auto_resolve", 0.95), T) == A.AUTO_RESOLVE
    assert decide(analysis(0.9, "auto_resolve", 0.95), strict) == A.SCHEDULE_FOLLOWUP
    assert decide(analysis(0.96, "auto_resolve", 0.95), strict) == A.SCHEDULE_FOLLOWUP


def test_missing_fields_are_treated_as_no_confidence() -> None:
    assert decide(Analysis(), T) == A.REQUEST_CLARIFICATION
    assert decide(Analysis.model_validate({"analysis": {"severity": "CRITICAL"}}), T) == A.ESCALATE


def test_critical_and_levels() -> None:
    assert is_critical(analysis(0.1, "x", severity="high")) and not is_critical(analysis(0.1, "x"))
    assert [confidence_level(c, T) for c in (0.8, 0.6, 0.59)] == ["high", "medium", "low"]


def test_rollout_is_stable_monotonic_and_proportional() -> None:
    assert all(bucket(i) == bucket(i) for i in range(100))
    ten = {i for i in range(10_000) if in_rollout(i, 10)}
    fifty = {i for i in range(10_000) if in_rollout(i, 50)}
    assert ten <= fifty
    assert 900 < len(ten) < 1100 and 4800 < len(fifty) < 5200
    assert not any(in_rollout(i, 0) for i in range(1000)) and all(in_rollout(i, 100) for i in range(1000))
