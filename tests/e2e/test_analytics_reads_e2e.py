"""Analytics end to end on the local host: after a scenario of auto-resolutions, a confirmation, a
rejection, a changed answer, a rollback and an assumed resolution, every figure of both reads, the
weekly report and ticket analytics is exactly what the test counted.

The figures come from the maintained tallies, which the repository's recorder keeps
(shared/services/analytics.py, the Table AnalyticsStore), folded as the sweeper does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import RANSOMWARE, RESET
from shared.domain.report import iso_week
from shared.storage.names import ANALYTICS
from shared.storage.tables.analytics import TableAnalytics
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until

ALICE, STAFF, ADMIN = bearer("alice"), bearer("sam", "staff"), bearer("ada", "admin")


def ticket(api: httpx.Client, ticket_id: int) -> dict[str, Any]:
    return api.get(f"/tickets/{ticket_id}/", headers=ALICE).json()  # type: ignore[no-any-return]


def processed(api: httpx.Client, fields: dict[str, Any], status: str) -> dict[str, Any]:
    created = create_ticket(api, "alice", **fields)
    assert api.post(f"/tickets/{created['id']}/process/", headers=ALICE).status_code == 202
    return wait_until(lambda: (t := ticket(api, created["id"]))["status"] == status and t, timeout=30)  # type: ignore[no-any-return]


def answer(api: httpx.Client, ticket_id: int, confirmed: bool, score: int) -> None:
    body = {"resolution_confirmed": confirmed, "satisfaction_score": score, "feedback_text": ""}
    response = api.post(f"/tickets/{ticket_id}/resolution-feedback/", headers=ALICE, json=body)
    assert response.status_code == 200, response.text


def fold(stack: Stack) -> None:
    """What the sweeper does every run: the reads see folded events only."""
    store = TableAnalytics(stack.storage.table(ANALYTICS))
    while store.fold(1000):
        pass


def read(api: httpx.Client, path: str, headers: dict[str, str] = STAFF) -> dict[str, Any]:
    response = api.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_figures_after_a_scenario_are_exactly_counted(stack: Stack) -> None:
    host = stack.host(FOLLOWUP_DELAY_SECONDS=1, FEEDBACK_WINDOW_SECONDS=5)
    with stack.client(host) as api:
        a, b, c, d, e = (processed(api, RESET, "resolved") for _ in range(5))
        f = processed(api, RANSOMWARE, "escalated")
        answer(api, a["id"], True, 5)  # confirmed, 5 stars
        answer(api, b["id"], False, 2)  # failed: reopened, escalated
        answer(api, e["id"], True, 0)  # confirmed without a score...
        answer(api, e["id"], True, 4)  # ...then with 4: replaced, not counted twice
        history = api.get(f"/tickets/{c['id']}/action-history/", headers=ALICE).json()["action_history"]
        action = next(x for x in history if x["action_type"] == "AUTO_RESOLVE")
        rolled = api.post(
            f"/tickets/actions/{action['id']}/rollback/", headers=ADMIN, json={"reason": "x", "force": True}
        )
        assert rolled.status_code == 200, rolled.text
        wait_until(lambda: ticket(api, d["id"])["resolution"]["outcome"] == "assumed", timeout=60)
        confidences = [ticket(api, t["id"])["agent"]["confidence"] for t in (a, b, c, d, e, f)]

        def settled() -> dict[str, Any] | None:  # the tallies follow each commit at the next fold
            fold(stack)
            figures = read(api, "/tickets/resolution-analytics/")
            return figures if figures["assumed_resolved"] == 1 else None

        resolution = wait_until(settled, timeout=10)
        assert {k: v for k, v in resolution.items() if k not in ("since", "until")} == {
            "total_resolutions": 4,  # five, one voided
            "confirmed_successful": 2,
            "confirmed_failed": 1,
            "assumed_resolved": 1,
            "pending_feedback": 0,
            "reopened_tickets": 1,
            "rolled_back": 1,
            "average_satisfaction_score": 3.67,  # (5 + 2 + 4) / 3
            "satisfaction_responses": 3,
            "success_rate": 50.0,
            "confirmed_rate_of_answered": 66.67,
            "feedback_response_rate": 75.0,
            "rollback_rate": 20.0,
            "reopen_rate": 25.0,
            "action_type_breakdown": [
                {"autonomous_action": "AUTO_RESOLVE", "total": 4, "confirmed": 2, "failed": 1}
            ],
        }

        agent = read(api, "/tickets/agent/analytics/")
        assert (agent["total_tickets"], agent["processed_by_agent"], agent["agent_processing_rate"]) == (
            6,
            6,
            100.0,
        )
        assert agent["actions_by_type"] == {"AUTO_RESOLVE": 5, "ESCALATE": 1}
        assert (agent["autonomous_solutions"], agent["rolled_back_actions"], agent["deferred_to_human"]) == (
            4,
            1,
            0,
        )
        assert agent["resolution_success_rate"] == 50.0 and agent["decisions"] == 6
        assert sum(agent["confidence_distribution"].values()) == 6
        expected = sum(round(x * 1000) for x in confidences) / 6 / 1000
        assert abs(agent["average_confidence_score"] - expected) <= 0.001
        assert agent["autonomous_actions_today"] >= 5 and agent["agent_status"] == "active"

        weekly = read(api, f"/tickets/reports/weekly/?week={iso_week(datetime.now(UTC).date())}")
        verdicts = {c["name"]: (c["figure"], c["passed"]) for c in weekly["criteria"]}
        assert verdicts["resolution_success_rate"] == (50.0, False)
        assert verdicts["average_satisfaction_score"] == (3.67, False)
        assert verdicts["reopen_rate"] == (25.0, False) and verdicts["rollback_rate"] == (20.0, False)
        assert verdicts["agent_processing_rate_min"] == (100.0, True)
        assert verdicts["agent_processing_rate_max"] == (100.0, False)
        assert weekly["all_passed"] is False
        assert weekly["current"]["resolution"]["total_resolutions"] == 4

        everyone = read(api, "/tickets/analytics/")
        assert everyone["total_tickets"] == 6 and everyone["scope"] == "all"
        mine = read(api, "/tickets/analytics/", ALICE)
        # a and e closed by the "yes", d still resolved; b and f escalated, c back to new
        assert (mine["total_tickets"], mine["closed_tickets"], mine["open_tickets"]) == (6, 3, 3)
