"""The figures of SPEC §8 from tallies (shared/domain/report.py): each meaning, counted by hand."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from shared.domain import report
from shared.domain.tally import Tally

SINCE, UNTIL = date(2026, 11, 1), date(2026, 11, 30)
NOW = report.AgentNow(3, 7, 100, 500, "active", 50, datetime(2026, 11, 30, 12, tzinfo=UTC))


def tally(**counts: int) -> Tally:
    return Counter({name.replace("__", ":"): n for name, n in counts.items()})


# 10 resolutions created, one voided by a rollback: 9 count. 5 confirmed, 1 failed (reopened),
# 2 assumed, 1 pending. Three answers with a score (5, 4, 4).
MIXED = tally(
    resolutions=10,
    voided=1,
    confirmed=5,
    failed=1,
    assumed=2,
    reopened=1,
    satisfaction_sum=13,
    satisfaction_count=3,
    resolutions__AUTO_RESOLVE=8,
    resolutions__SCHEDULE_FOLLOWUP=1,
    confirmed__AUTO_RESOLVE=5,
    failed__AUTO_RESOLVE=1,
)


def test_each_resolution_figure_has_its_meaning() -> None:
    figures = report.resolution_analytics(MIXED, SINCE, UNTIL)
    assert figures.total_resolutions == 9  # voided excluded
    assert (figures.confirmed_successful, figures.confirmed_failed, figures.assumed_resolved) == (5, 1, 2)
    assert figures.pending_feedback == 1  # 9 - 5 - 1 - 2
    assert figures.success_rate == 55.56  # 5 / 9: assumed and pending are not successes
    assert figures.confirmed_rate_of_answered == 83.33  # 5 / 6 answers
    assert figures.feedback_response_rate == 66.67  # 6 / 9
    assert figures.rollback_rate == 10.0  # 1 voided / 10 created
    assert figures.reopen_rate == 11.11  # 1 / 9
    assert figures.rolled_back == 1 and figures.reopened_tickets == 1
    assert figures.average_satisfaction_score == 4.33 and figures.satisfaction_responses == 3
    assert [row.model_dump() for row in figures.action_type_breakdown] == [
        {"autonomous_action": "AUTO_RESOLVE", "total": 8, "confirmed": 5, "failed": 1},
        {"autonomous_action": "SCHEDULE_FOLLOWUP", "total": 1, "confirmed": 0, "failed": 0},
    ]
    assert (figures.since, figures.until) == (SINCE, UNTIL)


def test_assumed_resolutions_never_count_as_successes() -> None:
    figures = report.resolution_analytics(tally(resolutions=4, assumed=4), SINCE, UNTIL)
    assert figures.success_rate == 0.0 and figures.assumed_resolved == 4 and figures.pending_feedback == 0
    assert figures.confirmed_rate_of_answered == 0.0  # nobody answered


def test_nothing_gives_zeros_and_a_null_satisfaction() -> None:
    figures = report.resolution_analytics(Counter(), SINCE, UNTIL)
    assert figures.total_resolutions == 0 and figures.success_rate == 0.0 and figures.rollback_rate == 0.0
    assert figures.average_satisfaction_score is None and figures.action_type_breakdown == []
    agent = report.agent_analytics(Counter(), SINCE, UNTIL, NOW)
    assert agent.average_confidence_score == 0.0 and agent.agent_processing_rate == 0.0


def test_everything_voided_is_no_resolution_at_all() -> None:
    figures = report.resolution_analytics(tally(resolutions=2, voided=2), SINCE, UNTIL)
    assert (figures.total_resolutions, figures.success_rate, figures.rollback_rate) == (0, 0.0, 100.0)


def test_a_breakdown_row_left_at_zero_by_deltas_is_not_shown() -> None:
    # A resolution whose action was rolled back leaves `resolutions:X` at 0 after its deltas.
    assert report.breakdown(tally(resolutions__ESCALATE=0, resolutions__AUTO_RESOLVE=1)) == [
        report.breakdown(tally(resolutions__AUTO_RESOLVE=1))[0]
    ]


def test_agent_figures() -> None:
    counts = tally(
        tickets=20,
        processed=7,
        decisions=3,
        confidence_milli=2345,
        confidence__high=2,
        confidence__low=1,
        actions__AUTO_RESOLVE=2,
        actions__ESCALATE=1,
        deferred=2,
        shadowed=1,
        rolled_back=1,
        resolutions=2,
        voided=1,
        confirmed=1,
    )
    agent = report.agent_analytics(counts, SINCE, UNTIL, NOW)
    assert agent.total_tickets == 20 and agent.processed_by_agent == 7
    assert agent.agent_processing_rate == 35.0
    assert agent.average_confidence_score == 0.782  # 2.345 / 3, 3 decimals
    assert agent.confidence_distribution.model_dump() == {"high": 2, "medium": 0, "low": 1}
    assert agent.actions_by_type == {"AUTO_RESOLVE": 2, "ESCALATE": 1}
    assert (agent.deferred_to_human, agent.shadow_decisions, agent.rolled_back_actions) == (2, 1, 1)
    assert agent.autonomous_solutions == 1  # resolutions not voided
    assert agent.resolution_success_rate == 100.0  # 1 confirmed of 1 standing
    assert (agent.autonomous_actions_last_hour, agent.autonomous_actions_today) == (3, 7)
    assert agent.caps.model_dump() == {"per_hour": 100, "per_day": 500}
    assert (agent.agent_status, agent.rollout_percent, agent.last_updated) == ("active", 50, NOW.at)


def test_iso_weeks() -> None:
    assert report.week_days("2026-W48") == (date(2026, 11, 23), date(2026, 11, 29))
    assert report.week_days("2026-W53") == (date(2026, 12, 28), date(2027, 1, 3))  # 2026 has 53
    with pytest.raises(ValueError):
        report.week_days("2025-W53")
    with pytest.raises(ValueError):
        report.week_days("2026-W00")
    assert report.iso_week(date(2027, 1, 1)) == "2026-W53"
    assert report.last_complete_week(date(2026, 11, 30)) == "2026-W48"  # a Monday
    assert report.last_complete_week(date(2026, 11, 29)) == "2026-W47"  # a Sunday: W48 not over


def test_tickets_per_week_covers_every_week_of_the_window_with_only_its_days() -> None:
    tallies = {
        date(2026, 11, 1): tally(tickets=2),  # a Sunday: W44
        date(2026, 11, 2): tally(tickets=3),  # W45
        date(2026, 11, 20): tally(tickets=1),  # W47
        date(2026, 10, 31): tally(tickets=100),  # before the window
    }
    weeks = report.tickets_per_week(tallies, date(2026, 11, 1), date(2026, 11, 20))
    assert [(w.week, w.count) for w in weeks] == [
        ("2026-W44", 2),
        ("2026-W45", 3),
        ("2026-W46", 0),
        ("2026-W47", 1),
    ]
    assert weeks[0].week_start == date(2026, 10, 26)


def test_staff_ticket_analytics() -> None:
    tallies = {date(2026, 11, 2): tally(tickets=5, closed=2, resolution_seconds=700)}
    figures = report.ticket_analytics(tallies, date(2026, 11, 1), date(2026, 11, 7))
    assert (figures.total_tickets, figures.open_tickets, figures.closed_tickets) == (5, 3, 2)
    assert figures.avg_resolution_time_seconds == 350.0 and figures.scope == "all"
    empty = report.ticket_analytics({}, date(2026, 11, 1), date(2026, 11, 7))
    assert empty.avg_resolution_time_seconds is None and empty.open_tickets == 0


LIMITS = report.Thresholds()


def by_name(criteria: list[report.Criterion]) -> dict[str, report.Criterion]:
    return {c.name: c for c in criteria}


def test_a_criterion_without_data_is_never_a_pass() -> None:
    checked = report.criteria({}, SINCE, UNTIL, LIMITS)
    assert len(checked) == 9 and all(c.passed is None and c.figure is None for c in checked)


DAY = date(2026, 11, 10)


def test_the_criteria_on_a_good_week() -> None:
    good = tally(
        resolutions=100,
        voided=0,
        confirmed=90,
        failed=2,
        reopened=2,
        satisfaction_sum=450,
        satisfaction_count=100,
        tickets=250,
        processed=100,
        decisions=100,
        confidence_milli=85000,
    )
    checked = by_name(report.criteria({DAY: good}, SINCE, UNTIL, LIMITS))
    assert all(c.passed for c in checked.values()), checked
    assert checked["resolution_success_rate"].figure == 90.0
    assert checked["agent_processing_rate_min"].figure == 40.0
    assert checked["average_confidence_score"].figure == 0.85
    assert checked["daily_rollback_rate_worst_day"].figure == 0.0


def test_thresholds_are_strict_where_the_guide_says_more_or_less_than() -> None:
    edge = tally(resolutions=100, confirmed=80, reopened=5, tickets=100, processed=30, decisions=10)
    edge.update(tally(satisfaction_sum=40, satisfaction_count=10, voided=2, confidence_milli=7000))
    checked = by_name(report.criteria({DAY: edge}, SINCE, UNTIL, LIMITS))
    assert checked["resolution_success_rate"].figure == pytest.approx(81.63)  # 80 / 98
    assert checked["resolution_success_rate"].passed is True
    assert checked["resolution_success_rate_weekly_target"].passed is False
    assert checked["average_satisfaction_score"].passed is False  # 4.0 is not > 4.0
    assert checked["rollback_rate"].figure == 2.0 and checked["rollback_rate"].passed is False
    assert checked["agent_processing_rate_min"].passed is True  # 30 is within 30-50
    assert checked["agent_processing_rate_max"].passed is True
    assert checked["average_confidence_score"].passed is False  # 0.7 is not > 0.7


def test_the_daily_rollback_watch_takes_the_worst_day() -> None:
    days = {
        date(2026, 11, 2): tally(resolutions=100),
        date(2026, 11, 3): tally(resolutions=10, voided=1),
        date(2026, 11, 4): tally(tickets=3),  # no resolutions: not a day of the watch
    }
    assert report.daily_rollback_rate(days, SINCE, UNTIL) == 10.0
    assert report.daily_rollback_rate(days, date(2026, 11, 2), date(2026, 11, 2)) == 0.0
    assert report.daily_rollback_rate(days, date(2026, 11, 4), date(2026, 11, 4)) is None


def test_thresholds_come_from_the_settings() -> None:
    strict = report.Thresholds(min_success_rate=95.0)
    checked = by_name(report.criteria({DAY: tally(resolutions=10, confirmed=9)}, SINCE, UNTIL, strict))
    assert checked["resolution_success_rate"].threshold == 95.0
    assert checked["resolution_success_rate"].passed is False
