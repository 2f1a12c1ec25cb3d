"""Analytics (SPEC §8): resolution and agent figures, the weekly rollout report, ticket analytics."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

import azure.functions as func
from pydantic import StringConstraints

from functions.http import Call, Query, api, json_response
from shared.domain import report
from shared.domain.public import AgentAnalytics, ResolutionAnalytics, TicketAnalytics, WeeklyReport
from shared.errors import ValidationFailed
from shared.services.reports import weekly_csv

bp = func.Blueprint()

IsoDate = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
IsoWeek = Annotated[str, StringConstraints(pattern=r"^\d{4}-W\d{2}$")]


class AnalyticsQuery(Query):
    """`?since=&until=`: ISO dates, UTC days, both included; at most 366 days. Without them, the
    last 30 days (until = today); the response names the days it covers."""

    since: IsoDate | None = None
    until: IsoDate | None = None


class TicketAnalyticsQuery(AnalyticsQuery):
    scope: Literal["all", "mine"] = "all"  # staff: `mine` for their own tickets


class WeeklyQuery(Query):
    """`?week=YYYY-Www` (ISO week; default the last complete one), `?format=csv` for a file."""

    week: IsoWeek | None = None
    format: Literal["json", "csv"] = "json"


def _day(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"`{name}` is not a date.", [{"loc": name, "msg": "Not a calendar date (YYYY-MM-DD)."}]
        ) from None


def window(call: Call, query: AnalyticsQuery) -> tuple[date, date]:
    """The days asked for, checked: since <= until, at most MAX_RANGE_DAYS of them."""
    since, until = call.container.report_service.window(
        _day("since", query.since), _day("until", query.until)
    )
    if since > until:
        raise ValidationFailed(
            "`since` is after `until`.", [{"loc": "since", "msg": f"Must not be after {until.isoformat()}."}]
        )
    if until - since >= timedelta(days=report.MAX_RANGE_DAYS):
        raise ValidationFailed(
            f"The range is longer than {report.MAX_RANGE_DAYS} days.",
            [{"loc": "since", "msg": f"At most {report.MAX_RANGE_DAYS} days before `until`."}],
        )
    return since, until


@api(
    bp,
    "tickets_resolution_analytics",
    "tickets/resolution-analytics",
    "GET",
    access="staff",
    query=AnalyticsQuery,
    response=ResolutionAnalytics,
)
def tickets_resolution_analytics(call: Call) -> func.HttpResponse:
    """GET /api/tickets/resolution-analytics/ — staff: the fate of the autonomous resolutions."""
    since, until = window(call, call.query(AnalyticsQuery))
    return json_response(call.container.report_service.resolution(since, until))


@api(
    bp,
    "tickets_agent_analytics",
    "tickets/agent/analytics",
    "GET",
    access="staff",
    query=AnalyticsQuery,
    response=AgentAnalytics,
)
def tickets_agent_analytics(call: Call) -> func.HttpResponse:
    """GET /api/tickets/agent/analytics/ — staff: what the agent did, its caps and status now."""
    since, until = window(call, call.query(AnalyticsQuery))
    return json_response(call.container.report_service.agent(since, until))


@api(
    bp,
    "tickets_analytics",
    "tickets/analytics",
    "GET",
    access="user",
    query=TicketAnalyticsQuery,
    response=TicketAnalytics,
)
def tickets_analytics(call: Call) -> func.HttpResponse:
    """GET /api/tickets/analytics/ — open, closed, resolution time, per week: staff all, a user theirs."""
    query = call.query(TicketAnalyticsQuery)
    since, until = window(call, query)
    mine = query.scope == "mine"
    return json_response(call.container.report_service.tickets(call.caller, since, until, mine))


@api(
    bp,
    "tickets_weekly_report",
    "tickets/reports/weekly",
    "GET",
    access="staff",
    query=WeeklyQuery,
    response=WeeklyReport,
)
def tickets_weekly_report(call: Call) -> func.HttpResponse:
    """GET /api/tickets/reports/weekly/ — staff: a week against the one before, rollout criteria checked."""
    query = call.query(WeeklyQuery)
    week = query.week or report.last_complete_week(call.container.clock().date())
    try:
        report.week_days(week)[0] - timedelta(days=7)  # the week and the one before exist
    except (ValueError, OverflowError):
        raise ValidationFailed(
            f"There is no ISO week {week}.", [{"loc": "week", "msg": "Not an ISO week (YYYY-Www, W01..W53)."}]
        ) from None
    weekly = call.container.report_service.weekly(week)
    if query.format == "csv":
        name = re.sub(r"[^0-9A-Za-z-]", "", week)
        return func.HttpResponse(
            weekly_csv(weekly),
            status_code=200,
            mimetype="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="rollout-report-{name}.csv"'},
        )
    return json_response(weekly)
