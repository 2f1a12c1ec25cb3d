"""The figures of SPEC §8, computed from summed tallies (shared/domain/tally.py). Pure: no I/O.

Every figure is a counter or a ratio of counters of the days asked for, so the same tallies
always give the same figures, whatever the number of tickets behind them. Meanings:

- `total_resolutions` = resolutions created less those voided (rolled back);
- `success_rate` = confirmed / total_resolutions * 100, the web client's formula: an assumed
  resolution (nobody answered) and a pending one count as not confirmed, never as successes;
- `confirmed_rate_of_answered` = confirmed / (confirmed + failed) * 100: how the answers went,
  beside it and never mixed into it; `assumed_resolved` stands apart;
- `pending_feedback` = total - confirmed - failed - assumed;
- `rollback_rate` = voided / resolutions created * 100 (rolled-back ones included below the line);
- `reopen_rate` = reopened / total_resolutions * 100;
- `autonomous_solutions` (the web client's dashboard) = total_resolutions: the problems the agent
  solved on its own and that were not rolled back.

A ratio is rounded to 2 decimals and is 0 when its denominator is; the average satisfaction is
null when no answer had a score; the average confidence (3 decimals) is 0 when nothing was decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from shared.domain import tally as t
from shared.domain.public import (
    ActionBreakdown,
    AgentAnalytics,
    AgentCaps,
    ConfidenceDistribution,
    Criterion,
    ResolutionAnalytics,
    TicketAnalytics,
    WeekCount,
)
from shared.domain.tally import Tallies, Tally

MAX_RANGE_DAYS = 366  # a read is bounded by the days it covers: at most a year and a day


def percent(part: int, whole: int) -> float:
    """part / whole * 100, 2 decimals; 0 when whole is 0."""
    return round(part * 100 / whole, 2) if whole else 0.0


def resolution_analytics(tally: Tally, since: date, until: date) -> ResolutionAnalytics:
    resolutions, voided = tally[t.RESOLUTIONS], tally[t.VOIDED]
    confirmed, failed, assumed = tally[t.CONFIRMED], tally[t.FAILED], tally[t.ASSUMED]
    total = resolutions - voided
    scored = tally[t.SATISFACTION_COUNT]
    return ResolutionAnalytics(
        since=since,
        until=until,
        total_resolutions=total,
        confirmed_successful=confirmed,
        confirmed_failed=failed,
        assumed_resolved=assumed,
        pending_feedback=total - confirmed - failed - assumed,
        reopened_tickets=tally[t.REOPENED],
        rolled_back=voided,
        average_satisfaction_score=round(tally[t.SATISFACTION_SUM] / scored, 2) if scored else None,
        satisfaction_responses=scored,
        success_rate=percent(confirmed, total),
        confirmed_rate_of_answered=percent(confirmed, confirmed + failed),
        feedback_response_rate=percent(confirmed + failed, total),
        rollback_rate=percent(voided, resolutions),
        reopen_rate=percent(tally[t.REOPENED], total),
        action_type_breakdown=breakdown(tally),
    )


def breakdown(tally: Tally) -> list[ActionBreakdown]:
    """One row per autonomous action that created a resolution (voided ones excluded), by name."""
    totals = t.keyed(tally, t.RESOLUTIONS_BY)
    confirmed, failed = t.keyed(tally, t.CONFIRMED_BY), t.keyed(tally, t.FAILED_BY)
    rows = [
        ActionBreakdown(
            autonomous_action=action,
            total=totals.get(action, 0),
            confirmed=confirmed.get(action, 0),
            failed=failed.get(action, 0),
        )
        for action in sorted({*totals, *confirmed, *failed})
    ]
    return [row for row in rows if row.total or row.confirmed or row.failed]


@dataclass(frozen=True)
class AgentNow:
    """What agent analytics show of the present, whatever the days asked for: the caps' usage
    in the current hour and UTC day, the caps, and the controls."""

    actions_last_hour: int
    actions_today: int
    per_hour: int
    per_day: int
    status: Literal["active", "paused", "shadow"]
    rollout_percent: int
    at: datetime


def average_confidence(tally: Tally) -> float:
    decisions = tally[t.DECISIONS]
    return round(tally[t.CONFIDENCE_MILLI] / decisions / 1000, 3) if decisions else 0.0


def agent_analytics(tally: Tally, since: date, until: date, now: AgentNow) -> AgentAnalytics:
    tickets, processed = tally[t.TICKETS], tally[t.PROCESSED]
    total = tally[t.RESOLUTIONS] - tally[t.VOIDED]
    confidence = t.keyed(tally, t.CONFIDENCE_BY)
    return AgentAnalytics(
        since=since,
        until=until,
        total_tickets=tickets,
        processed_by_agent=processed,
        agent_processing_rate=percent(processed, tickets),
        resolution_success_rate=percent(tally[t.CONFIRMED], total),
        average_confidence_score=average_confidence(tally),
        decisions=tally[t.DECISIONS],
        confidence_distribution=ConfidenceDistribution(
            high=confidence.get("high", 0), medium=confidence.get("medium", 0), low=confidence.get("low", 0)
        ),
        actions_by_type=dict(sorted(t.keyed(tally, t.ACTIONS_BY).items())),
        deferred_to_human=tally[t.DEFERRED],
        shadow_decisions=tally[t.SHADOWED],
        rolled_back_actions=tally[t.ROLLED_BACK],
        autonomous_solutions=total,
        autonomous_actions_last_hour=now.actions_last_hour,
        autonomous_actions_today=now.actions_today,
        caps=AgentCaps(per_hour=now.per_hour, per_day=now.per_day),
        agent_status=now.status,
        rollout_percent=now.rollout_percent,
        last_updated=now.at,
    )


# --- ISO weeks


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_days(week: str) -> tuple[date, date]:
    """Monday and Sunday of `YYYY-Www`. Raises ValueError when there is no such week."""
    year, _, number = week.partition("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    return monday, monday + timedelta(days=6)


def last_complete_week(today: date) -> str:
    return iso_week(today - timedelta(days=7))


def tickets_per_week(tallies: Tallies, since: date, until: date) -> list[WeekCount]:
    """Tickets created in each ISO week the window touches, counting only the window's days."""
    counts: dict[str, int] = {}
    day = since
    while day <= until:
        counts.setdefault(iso_week(day), 0)
        day += timedelta(days=7 - day.weekday())  # the next Monday
    if iso_week(until) not in counts:
        counts[iso_week(until)] = 0
    for day, tally in tallies.items():
        if since <= day <= until:
            counts[iso_week(day)] += tally[t.TICKETS]
    return [WeekCount(week=week, week_start=week_days(week)[0], count=n) for week, n in counts.items()]


def ticket_analytics(tallies: Tallies, since: date, until: date) -> TicketAnalytics:
    """Staff's ticket analytics from the tallies: created and closed in the window."""
    tally = t.total(tallies, since, until)
    created, closed = tally[t.TICKETS], tally[t.CLOSED]
    return TicketAnalytics(
        since=since,
        until=until,
        scope="all",
        total_tickets=created,
        open_tickets=max(0, created - closed),
        closed_tickets=closed,
        avg_resolution_time_seconds=round(tally[t.RESOLUTION_SECONDS] / closed, 2) if closed else None,
        tickets_per_week=tickets_per_week(tallies, since, until),
    )


def own_ticket_analytics(
    tickets: Iterable[tuple[date, bool, float | None]], since: date, until: date
) -> TicketAnalytics:
    """A user's ticket analytics from their own tickets created in the window, each as (day
    created, whether it is resolved or closed now, seconds from creation to its last change)."""
    counts: dict[date, Tally] = {}
    closed, seconds = 0, 0.0
    for day, done, took in tickets:
        if not since <= day <= until:
            continue
        counts.setdefault(day, Tally())[t.TICKETS] += 1
        if done:
            closed += 1
            seconds += took or 0.0
    created = sum(c[t.TICKETS] for c in counts.values())
    return TicketAnalytics(
        since=since,
        until=until,
        scope="mine",
        total_tickets=created,
        open_tickets=created - closed,
        closed_tickets=closed,
        avg_resolution_time_seconds=round(seconds / closed, 2) if closed else None,
        tickets_per_week=tickets_per_week(counts, since, until),
    )


# --- the weekly report's rollout criteria (SPEC §8, the deployment guide)


@dataclass(frozen=True)
class Thresholds:
    """The rollout criteria's thresholds (settings ROLLOUT_*)."""

    min_success_rate: float = 80.0
    target_success_rate: float = 85.0
    min_satisfaction: float = 4.0
    max_reopen_rate: float = 5.0
    max_rollback_rate: float = 2.0
    max_daily_rollback_rate: float = 1.0
    min_processing_rate: float = 30.0
    max_processing_rate: float = 50.0
    min_avg_confidence: float = 0.7


Comparison = Literal[">", "<", ">=", "<="]
CHECKS = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


def check(name: str, figure: float | None, threshold: float, comparison: Comparison) -> Criterion:
    """A criterion; no data (figure None) is `passed: null`, never a pass."""
    passed = None if figure is None else CHECKS[comparison](figure, threshold)
    return Criterion(name=name, figure=figure, threshold=threshold, comparison=comparison, passed=passed)


def daily_rollback_rate(tallies: Tallies, since: date, until: date) -> float | None:
    """The worst day's rollback rate among the days with resolutions; None when none had any."""
    rates = [
        percent(tally[t.VOIDED], tally[t.RESOLUTIONS])
        for day, tally in tallies.items()
        if since <= day <= until and tally[t.RESOLUTIONS] > 0
    ]
    return max(rates) if rates else None


def criteria(tallies: Tallies, since: date, until: date, limits: Thresholds) -> list[Criterion]:
    """The rollout criteria checked on the days from `since` to `until`."""
    tally = t.total(tallies, since, until)
    resolutions = tally[t.RESOLUTIONS]
    total = resolutions - tally[t.VOIDED]
    scored, tickets = tally[t.SATISFACTION_COUNT], tally[t.TICKETS]
    success = percent(tally[t.CONFIRMED], total) if total > 0 else None
    processing = percent(tally[t.PROCESSED], tickets) if tickets > 0 else None
    return [
        check("resolution_success_rate", success, limits.min_success_rate, ">"),
        check("resolution_success_rate_weekly_target", success, limits.target_success_rate, ">"),
        check(
            "average_satisfaction_score",
            round(tally[t.SATISFACTION_SUM] / scored, 2) if scored else None,
            limits.min_satisfaction,
            ">",
        ),
        check(
            "reopen_rate",
            percent(tally[t.REOPENED], total) if total > 0 else None,
            limits.max_reopen_rate,
            "<",
        ),
        check(
            "rollback_rate",
            percent(tally[t.VOIDED], resolutions) if resolutions > 0 else None,
            limits.max_rollback_rate,
            "<",
        ),
        check(
            "daily_rollback_rate_worst_day",
            daily_rollback_rate(tallies, since, until),
            limits.max_daily_rollback_rate,
            "<",
        ),
        check("agent_processing_rate_min", processing, limits.min_processing_rate, ">="),
        check("agent_processing_rate_max", processing, limits.max_processing_rate, "<="),
        check(
            "average_confidence_score",
            average_confidence(tally) if tally[t.DECISIONS] > 0 else None,
            limits.min_avg_confidence,
            ">",
        ),
    ]


def flatten(prefix: str, value: object) -> Mapping[str, float | int | str | None]:
    """A figure tree as dotted names (`resolution.action_type_breakdown.AUTO_RESOLVE.total`), for CSV."""
    out: dict[str, float | int | str | None] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}", item))
    elif isinstance(value, list):
        for item in value:
            name = item.get("autonomous_action", "") if isinstance(item, dict) else ""
            out.update(
                flatten(f"{prefix}.{name}", {k: v for k, v in item.items() if k != "autonomous_action"})
            )
    elif value is None or isinstance(value, int | float | str):
        out[prefix] = value
    return out
