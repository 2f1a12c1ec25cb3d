"""Reading the analytics: SPEC §8's two reads, the weekly rollout report, the web client's ticket
analytics. The figures are computed by shared/domain/report.py from the maintained tallies.

A staff read costs at most three storage round trips whatever the number of tickets: the tallies
of the days asked for (AnalyticsStore.read, one range query), the caps' usage (ActionCaps.usage)
and the controls (cached for a few seconds); the three run in parallel."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from shared.domain import report
from shared.domain.models import Principal, Status, Ticket
from shared.domain.public import (
    AgentAnalytics,
    ResolutionAnalytics,
    TicketAnalytics,
    WeekAnalytics,
    WeeklyReport,
)
from shared.domain.tally import Tallies, total
from shared.ports import ActionCaps, AnalyticsStore, Clock, TicketRepository
from shared.services.controls import ControlsService

DEFAULT_DAYS = 30  # the window without ?since=: the last 30 UTC days, today included
OWN_PAGE = 100
MAX_OWN_TICKETS = 2000  # a user's analytics read at most their newest 2,000 tickets
DONE = (Status.RESOLVED, Status.CLOSED)
# One pool per process for the reads beside the tallies' (caps, controls). Its tasks wait on
# nothing, so any number of concurrent requests share it without deadlock.
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="reports")


@dataclass(frozen=True)
class Caps:
    per_hour: int
    per_day: int


class ReportService:
    def __init__(
        self,
        store: AnalyticsStore,
        caps: ActionCaps,
        cap_limits: Caps,
        controls: ControlsService,
        tickets: TicketRepository,
        thresholds: report.Thresholds,
        clock: Clock,
    ) -> None:
        self._store, self._caps, self._limits, self._controls = store, caps, cap_limits, controls
        self._tickets, self._thresholds, self._clock = tickets, thresholds, clock

    def window(self, since: date | None, until: date | None) -> tuple[date, date]:
        """The days asked for; without them the last DEFAULT_DAYS UTC days (until = today)."""
        until = until or self._clock().date()
        if since is None:
            try:
                since = until - timedelta(days=DEFAULT_DAYS - 1)
            except OverflowError:  # `until` in the first days of year 1
                since = date.min
        return since, until

    def resolution(self, since: date, until: date) -> ResolutionAnalytics:
        return report.resolution_analytics(total(self._store.read(since, until)), since, until)

    def agent(self, since: date, until: date) -> AgentAnalytics:
        tallies, now = self._read_with_now(since, until)
        return report.agent_analytics(total(tallies), since, until, now)

    def weekly(self, week: str) -> WeeklyReport:
        """`week` (YYYY-Www, valid) and the week before, in one read of their 14 days."""
        since, until = report.week_days(week)
        before = since - timedelta(days=7)
        tallies, agent_now = self._read_with_now(before, until)
        current = self._week(week, tallies, since, until, agent_now)
        previous = self._week(report.iso_week(before), tallies, before, since - timedelta(days=1), agent_now)
        checked = report.criteria(tallies, since, until, self._thresholds)
        verdicts = [c.passed for c in checked]
        all_passed = False if False in verdicts else (None if None in verdicts else True)
        return WeeklyReport(
            week=week,
            generated_at=agent_now.at,
            current=current,
            previous=previous,
            criteria=checked,
            all_passed=all_passed,
        )

    @staticmethod
    def _week(week: str, tallies: Tallies, since: date, until: date, now: report.AgentNow) -> WeekAnalytics:
        tally = total(tallies, since, until)
        return WeekAnalytics(
            week=week,
            since=since,
            until=until,
            resolution=report.resolution_analytics(tally, since, until),
            agent=report.agent_analytics(tally, since, until, now),
        )

    def tickets(self, caller: Principal, since: date, until: date, mine: bool = False) -> TicketAnalytics:
        """Staff (unless `mine`): every ticket, from the tallies. A user: their own tickets, read
        through their owner index newest first, stopping at the first one created before the
        window (so the cost is their tickets in the window, at most MAX_OWN_TICKETS)."""
        if caller.is_staff and not mine:
            return report.ticket_analytics(self._store.read(since, until), since, until)
        return report.own_ticket_analytics(self._own(caller.sub, since, until), since, until)

    def _own(self, owner: str, since: date, until: date) -> list[tuple[date, bool, float | None]]:
        """The owner's tickets of the window, newest first: at most MAX_OWN_TICKETS read, those
        newer than the window included (a window far in the past reads no further)."""
        seen: list[tuple[date, bool, float | None]] = []
        cursor: str | None = None
        for _ in range(MAX_OWN_TICKETS // OWN_PAGE):
            page = self._tickets.list_for_owner(owner, None, OWN_PAGE, cursor)
            for ticket in page.results:
                assert isinstance(ticket, Ticket)
                day = ticket.created_at.date()
                if day < since:
                    return seen
                if day <= until:
                    seen.append((day, ticket.status in DONE, _took(ticket)))
            cursor = page.next_cursor
            if cursor is None:
                break
        return seen

    def _read_with_now(self, since: date, until: date) -> tuple[Tallies, report.AgentNow]:
        """The tallies, with the caps' usage and the controls read beside them (each task runs on
        the shared pool)."""
        at = self._clock()
        usage = _POOL.submit(self._caps.usage, at)
        controls = _POOL.submit(self._controls.current)
        tallies = self._store.read(since, until)
        last_hour, today = usage.result()
        current = controls.result()
        now = report.AgentNow(
            actions_last_hour=last_hour,
            actions_today=today,
            per_hour=self._limits.per_hour,
            per_day=self._limits.per_day,
            status=current.status,  # type: ignore[arg-type]
            rollout_percent=current.rollout_percent,
            at=at,
        )
        return tallies, now


def _took(ticket: Ticket) -> float | None:
    """Seconds from creation to the ticket's last change: for a resolved or closed ticket, when
    it reached that state (a later change, e.g. a confirmation closing it, counts as the end)."""
    if ticket.status not in DONE:
        return None
    return max(0.0, (ticket.updated_at - ticket.created_at).total_seconds())


CSV_COLUMNS = ("kind", "name", "figure", "previous_figure", "threshold", "comparison", "passed")


def weekly_csv(weekly: WeeklyReport) -> str:
    """The weekly report as CSV: one row per criterion, then one per figure (this week and the
    week before side by side), with a header. A criterion without data says `no data`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in weekly.criteria:
        passed = "no data" if c.passed is None else ("pass" if c.passed else "fail")
        writer.writerow(("criterion", c.name, _cell(c.figure), "", c.threshold, c.comparison, passed))
    current, previous = _figures(weekly.current), _figures(weekly.previous)
    for name in sorted({*current, *previous}):
        writer.writerow(("figure", name, _cell(current.get(name)), _cell(previous.get(name)), "", "", ""))
    return out.getvalue()


def _figures(week: WeekAnalytics) -> dict[str, float | int | str | None]:
    skip = {"since", "until", "last_updated"}
    figures: dict[str, float | int | str | None] = {}
    for part in ("resolution", "agent"):
        dumped = getattr(week, part).model_dump(mode="json", exclude=skip)
        figures.update(report.flatten(part, dumped))
    return figures


def _cell(value: float | int | str | None) -> str:
    return "" if value is None else str(value)
