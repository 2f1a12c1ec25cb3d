"""What each event adds to the analytics tallies (shared/domain/analytics.py), event kind by event
kind, and that a ticket's recount from scratch is the sum of what its events recorded."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import actions, changes, feedback
from shared.domain import tally as t
from shared.domain.analysis import Analysis
from shared.domain.analytics import add_up, created, day_of, delta, difference, level, recount, state_tally
from shared.domain.assumed import assume
from shared.domain.decision import Thresholds
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import (
    ActionType,
    HistoryEntry,
    Resolution,
    ResolutionOutcome,
    Status,
    StatusChange,
    Ticket,
)
from shared.domain.rollback import rollback
from shared.domain.tally import Tallies, total

TH = Thresholds(high=0.8, medium=0.6)
D0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # created
D1 = D0 + timedelta(days=1)  # processed
D2 = D0 + timedelta(days=2)
D3 = D0 + timedelta(days=3)
PROVENANCE = {"agent": {"kind": "embedded", "version": "kb-test"}}


def analysis(confidence: float = 0.913, action: str = "auto_resolve") -> Analysis:
    return Analysis.model_validate(
        {
            "confidence": confidence,
            "recommended_action": action,
            "reasoning": "r",
            "analysis": {"severity": "medium", "category": "account", "suggested_team": "Identity"},
            "solution": {"steps": ["x"], "success_probability": 0.9},
        }
    )


def new_ticket() -> Ticket:
    return Ticket(
        id=7,
        issue_type="Password reset",
        description="",
        category="account",
        tags=[],
        user="u",
        status=Status.NEW,
        created_at=D0,
        updated_at=D0,
    )


def tallies(**by_day: dict[str, int]) -> Tallies:
    days = {"d0": D0.date(), "d1": D1.date(), "d2": D2.date(), "d3": D3.date()}
    return {days[k]: Counter(v) for k, v in by_day.items() if v}


class Story:
    """A ticket and its entries as the services commit them."""

    def __init__(self) -> None:
        self.ticket = new_ticket()
        self.entries: list[HistoryEntry] = []

    def step(self, changed: Ticket, *entries: HistoryEntry) -> list[Tallies]:
        self.ticket = changed
        self.entries.extend(entries)
        return [delta(e, TH) for e in entries]

    def act(self, action: ActionType, at: datetime = D1, confidence: float = 0.913) -> Tallies:
        [d] = self.step(*actions.act(self.ticket, action, analysis(confidence), at, PROVENANCE))
        return d

    def answer(self, confirmed: bool, score: int | None, at: datetime = D2) -> list[Tallies]:
        body = ResolutionFeedback(resolution_confirmed=confirmed, satisfaction_score=score)
        answered = feedback.answer(self.ticket, body, "u", at)
        return self.step(answered.ticket, *answered.entries)

    def action_entry(self, action: ActionType) -> HistoryEntry:
        return next(e for e in reversed(self.entries) if e.action_type == action)

    def rollback(self, action: ActionType = ActionType.AUTO_RESOLVE, at: datetime = D3) -> Tallies:
        rolled, entry, marked = rollback(self.ticket, self.action_entry(action), "admin", None, True, at)
        self.entries = [marked if e.seq == marked.seq else e for e in self.entries]
        [d] = self.step(rolled, entry)
        return d

    def recount(self) -> Tallies:
        return recount(self.ticket, self.entries, TH)

    def recorded(self) -> Tallies:
        return add_up([created(new_ticket()), *(delta(e, TH) for e in self.entries)])


def test_creation_counts_one_ticket_on_its_day() -> None:
    assert created(new_ticket()) == tallies(d0={"tickets": 1})


def test_auto_resolve_counts_the_decision_action_resolution_and_close_on_its_day() -> None:
    s = Story()
    got = s.act(ActionType.AUTO_RESOLVE)
    assert s.ticket.resolution is not None and s.ticket.resolution.resolved_at == D1
    assert got == tallies(
        d1={
            "processed": 1,
            "decisions": 1,
            "confidence_milli": 913,
            "confidence:high": 1,
            "actions:AUTO_RESOLVE": 1,
            "resolutions": 1,
            "resolutions:AUTO_RESOLVE": 1,
            "closed": 1,
            "resolution_seconds": 86400,
        }
    )


@pytest.mark.parametrize(
    ("action", "confidence", "band"),
    [
        (ActionType.ESCALATE, 0.7, "medium"),
        (ActionType.ASSIGN_TO_TEAM, 0.85, "high"),
        (ActionType.REQUEST_CLARIFICATION, 0.2, "low"),
        (ActionType.SCHEDULE_FOLLOWUP, 0.6, "medium"),
    ],
)
def test_other_actions_count_the_decision_and_action_but_no_resolution(
    action: ActionType, confidence: float, band: str
) -> None:
    got = Story().act(action, confidence=confidence)
    assert got == tallies(
        d1={
            "processed": 1,
            "decisions": 1,
            "confidence_milli": round(confidence * 1000),
            f"confidence:{band}": 1,
            f"actions:{action.value}": 1,
        }
    )


def test_a_deferral_counts_the_decision_and_the_deferral_not_an_action() -> None:
    s = Story()
    changed, entry = actions.defer(s.ticket, "cap", ActionType.AUTO_RESOLVE, analysis(0.5), D1, PROVENANCE)
    [got] = s.step(changed, entry)
    assert got == tallies(
        d1={"processed": 1, "decisions": 1, "confidence_milli": 500, "confidence:low": 1, "deferred": 1}
    )


def test_a_deferral_without_an_analysis_is_no_decision() -> None:
    s = Story()
    [got] = s.step(*actions.defer(s.ticket, "agent_unavailable", None, None, D1, PROVENANCE))
    assert got == tallies(d1={"processed": 1, "deferred": 1})


def test_a_shadow_decision_counts_the_decision_and_shadowed_only() -> None:
    s = Story()
    [got] = s.step(*actions.shadow(s.ticket, ActionType.AUTO_RESOLVE, analysis(0.9), D1, PROVENANCE))
    assert got == tallies(d1={"decisions": 1, "confidence_milli": 900, "confidence:high": 1, "shadowed": 1})


def test_the_followup_checks_escalation_is_an_action_but_not_an_agent_decision() -> None:
    s = Story()
    s.act(ActionType.SCHEDULE_FOLLOWUP)
    [got] = s.step(*actions.escalate_unresolved(s.ticket, D2))
    assert got == tallies(d2={"actions:ESCALATE": 1})


def test_yes_with_a_score_confirms_and_counts_satisfaction_on_the_resolutions_day() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    [got] = s.answer(True, 4, at=D3)
    assert got == tallies(
        d1={"confirmed": 1, "confirmed:AUTO_RESOLVE": 1, "satisfaction_sum": 4, "satisfaction_count": 1}
    )  # closed already counted when it was resolved: a ticket is done once


def test_no_fails_and_the_reopen_counts_reopened() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    received, reopen = s.answer(False, None)
    assert received == tallies(d1={"failed": 1, "failed:AUTO_RESOLVE": 1})
    assert reopen == tallies(d1={"reopened": 1})


def test_a_changed_answer_moves_the_figures_by_the_difference() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    s.answer(True, 5)
    [got] = s.answer(True, 2, at=D3)
    assert got == tallies(d1={"satisfaction_sum": -3})
    received, reopen = s.answer(False, 0, at=D3)  # 0 stars: no score
    assert received == tallies(
        d1={
            "confirmed": -1,
            "confirmed:AUTO_RESOLVE": -1,
            "failed": 1,
            "failed:AUTO_RESOLVE": 1,
            "satisfaction_sum": -2,
            "satisfaction_count": -1,
        }
    )
    assert reopen == tallies(d1={"reopened": 1})
    assert total(s.recount())["satisfaction_count"] == 0


def test_assumed_moves_pending_to_assumed() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    [got] = s.step(*assume(s.ticket, s.ticket.version, D3))
    assert got == tallies(d1={"assumed": 1})
    [answered] = s.answer(True, None, at=D3)
    assert answered == tallies(d1={"assumed": -1, "confirmed": 1, "confirmed:AUTO_RESOLVE": 1})


def test_a_rollback_of_a_resolution_voids_it_and_counts_the_rollback_on_its_day() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    got = s.rollback()
    assert got == tallies(d1={"voided": 1, "resolutions:AUTO_RESOLVE": -1}, d3={"rolled_back": 1})


def test_a_rollback_after_feedback_takes_the_answer_out_of_the_figures() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    s.answer(True, 5)
    got = s.rollback()
    assert got == tallies(
        d1={
            "voided": 1,
            "resolutions:AUTO_RESOLVE": -1,
            "confirmed": -1,
            "confirmed:AUTO_RESOLVE": -1,
            "satisfaction_sum": -5,
            "satisfaction_count": -1,
        },
        d3={"rolled_back": 1},
    )
    assert total(s.recount()) == Counter(
        {
            "tickets": 1,
            "processed": 1,
            "decisions": 1,
            "confidence_milli": 913,
            "confidence:high": 1,
            "actions:AUTO_RESOLVE": 1,
            "resolutions": 1,
            "voided": 1,
            "rolled_back": 1,
            "closed": 1,
            "resolution_seconds": 86400,
        }
    )


def test_a_rollback_of_another_action_counts_only_the_rollback() -> None:
    s = Story()
    s.act(ActionType.ESCALATE)
    assert s.rollback(ActionType.ESCALATE) == tallies(d3={"rolled_back": 1})


def test_a_staff_status_change_to_resolved_closes_once_and_back_and_again_adds_nothing() -> None:
    s = Story()
    [got] = s.step(*changes.change_status(s.ticket, StatusChange(status=Status.RESOLVED), "staff", D2))
    assert got == tallies(d2={"closed": 1, "resolution_seconds": 2 * 86400})
    [back] = s.step(*changes.change_status(s.ticket, StatusChange(status=Status.OPEN), "staff", D3))
    assert back == {}
    [again] = s.step(*changes.change_status(s.ticket, StatusChange(status=Status.CLOSED), "staff", D3))
    assert again == {}


def test_an_owner_closing_counts_closed() -> None:
    s = Story()
    [got] = s.step(*changes.change_status(s.ticket, StatusChange(status=Status.CLOSED), "u", D1))
    assert got == tallies(d1={"closed": 1, "resolution_seconds": 86400})


def test_a_new_resolution_leaves_the_voided_one_counted() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    s.rollback(at=D2)
    got = s.act(ActionType.AUTO_RESOLVE, at=D3)  # a forced re-run
    assert got[D3.date()]["resolutions"] == 1 and D1.date() not in got
    assert total(s.recount())["resolutions"] == 2 and total(s.recount())["voided"] == 1


def test_the_delta_is_the_same_once_the_entry_is_marked_rolled_back() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    before = delta(s.entries[0], TH)
    s.rollback()
    assert s.entries[0].rolled_back and delta(s.entries[0], TH) == before


def test_a_resolution_written_before_resolved_at_was_kept_counts_on_the_events_day() -> None:
    state: dict[str, Any] = {
        "resolution": Resolution(autonomous_action="AUTO_RESOLVE").model_dump(mode="json"),
        "created_at": D0.isoformat(),
    }
    assert state_tally(state, D2.date()) == tallies(d2={"resolutions": 1, "resolutions:AUTO_RESOLVE": 1})


def test_levels_follow_the_thresholds() -> None:
    assert [level(c, TH) for c in (0.8, 0.79, 0.6, 0.59)] == ["high", "medium", "medium", "low"]


def test_recount_refuses_a_history_with_a_gap() -> None:
    s = Story()
    s.act(ActionType.AUTO_RESOLVE)
    s.answer(True, 5)
    with pytest.raises(ValueError):
        recount(s.ticket, s.entries[1:], TH)


def test_difference_is_recomputed_minus_stored() -> None:
    assert difference(
        tallies(d1={"confirmed": 2, "failed": 1}), tallies(d1={"confirmed": 3, "failed": 1})
    ) == (tallies(d1={"confirmed": 1}))


# A random life of one ticket: recount (from scratch, over the entries as stored) is the sum of
# what each event recorded, whatever the order of events; and the totals are g of the final state
# plus what each event was.
EVENTS = st.lists(
    st.sampled_from(
        [
            "resolve",
            "escalate",
            "defer",
            "shadow",
            "yes",
            "no",
            "zero",
            "assume",
            "rollback",
            "staff",
            "close",
        ]
    ),
    max_size=12,
)


def live(s: Story, events: list[str]) -> None:
    at = D1
    for name in events:
        at += timedelta(hours=7)
        res = s.ticket.resolution
        if name == "resolve":
            s.act(ActionType.AUTO_RESOLVE, at)
        elif name == "escalate":
            s.act(ActionType.ESCALATE, at, confidence=0.65)
        elif name == "defer":
            s.step(*actions.defer(s.ticket, "cap", ActionType.ESCALATE, analysis(0.3), at, PROVENANCE))
        elif name == "shadow":
            s.step(*actions.shadow(s.ticket, ActionType.AUTO_RESOLVE, analysis(0.95), at, PROVENANCE))
        elif name in ("yes", "no", "zero") and res is not None and res.outcome in feedback.ANSWERABLE:
            s.answer(name == "yes", {"yes": 5, "no": 2, "zero": None}[name], at)
        elif name == "assume" and res is not None and res.outcome == ResolutionOutcome.PENDING:
            s.step(*assume(s.ticket, s.ticket.version, at))
        elif name == "rollback" and res is not None and res.outcome != ResolutionOutcome.VOIDED:
            resolving = s.action_entry(ActionType.AUTO_RESOLVE)
            if not resolving.rolled_back:
                s.rollback(at=at)
        elif name == "staff":
            s.step(*changes.change_status(s.ticket, StatusChange(status=Status.IN_PROGRESS), "staff", at))
        elif name == "close":
            s.step(*changes.change_status(s.ticket, StatusChange(status=Status.CLOSED), "u", at))


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.randoms())
def test_recount_is_the_sum_of_the_recorded_deltas_in_any_order(events: list[str], rnd: Any) -> None:
    s = Story()
    live(s, events)
    shuffled = list(s.entries)
    rnd.shuffle(shuffled)
    recorded = add_up([created(new_ticket()), *(delta(e, TH) for e in shuffled)])
    assert s.recount() == recorded
    if sum(e.action_type == ActionType.AUTO_RESOLVE for e in s.entries) <= 1:
        # Telescoping: everything of the current state, plus each event's own counters.
        from shared.domain.analytics import event_tally

        expected = add_up(
            [
                {day_of(D0): Counter({t.TICKETS: 1})},
                state_tally(s.ticket.state(), date(2026, 1, 1)),
                *(event_tally(e, TH) for e in s.entries),
            ]
        )
        assert total(s.recount()) == total(expected)
