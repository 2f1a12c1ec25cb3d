"""The analytics endpoints (SPEC §8, webapp-calls.md) through the HTTP adapter, on the in-memory
container with tallies put into its AnalyticsStore: windows, refusals, the weekly report and its
CSV, ticket analytics for staff and for a user, and the bounded cost of a read."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.config import Settings
from shared.container import Container
from shared.domain.models import AgentMode, ControlsUpdate, Principal, Status, StatusChange, TicketCreate
from shared.domain.tally import Tallies
from shared.storage.memory import InMemoryAnalytics
from tests.conftest import bearer
from tests.helpers import installed
from tests.unit.http_client import invoke, payload

NOW = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)  # a Monday
TODAY = NOW.date()
STAFF, ALICE, BOB = bearer("sam", "staff"), bearer("alice"), bearer("bob")
ADMIN = Principal(sub="ada", roles=frozenset({"admin"}))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class CountingAnalytics(InMemoryAnalytics):
    """The fake, counting its reads (each stands for one range query of the Table adapter)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[date, date]] = []

    def read(self, since: date, until: date) -> Tallies:
        self.reads.append((since, until))
        return super().read(since, until)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def container(settings: Settings, clock: Clock) -> Iterator[Container]:
    with installed(Container.in_memory(settings, clock=clock, analytics=CountingAnalytics())) as c:
        yield c


def record(c: Container, event: str, day: date, **counts: int) -> None:
    c.analytics.record(event, {day: Counter({k.replace("__", ":"): v for k, v in counts.items()})})


def get(name: str, headers: dict[str, str], **params: str) -> Any:
    return invoke(name, "GET", headers=headers, params=params)


def ok(name: str, headers: dict[str, str] = STAFF, **params: str) -> dict[str, Any]:
    response = get(name, headers, **params)
    assert response.status_code == 200, response.get_body()
    return payload(response)


def refused(name: str, loc: str, **params: str) -> None:
    response = get(name, {**STAFF, "Accept": "application/problem+json"}, **params)
    assert response.status_code == 400, response.get_body()
    assert response.mimetype == "application/problem+json"
    assert [e["loc"] for e in payload(response)["errors"]] == [loc]


# --- windows


def test_without_dates_the_last_30_days_are_read_and_named(container: Container) -> None:
    record(container, "a", TODAY, resolutions=2, confirmed=1)
    record(container, "b", TODAY - timedelta(days=29), resolutions=1, confirmed=1)
    record(container, "c", TODAY - timedelta(days=30), resolutions=50)  # a day too old
    figures = ok("tickets_resolution_analytics")
    assert (figures["since"], figures["until"]) == ("2026-11-01", "2026-11-30")
    assert figures["total_resolutions"] == 3 and figures["success_rate"] == 66.67


@pytest.mark.parametrize(
    "name", ["tickets_resolution_analytics", "tickets_agent_analytics", "tickets_analytics"]
)
def test_since_and_until_are_both_included(container: Container, name: str) -> None:
    for n, day in enumerate([date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 7), date(2026, 11, 8)]):
        record(container, f"e{n}", day, tickets=10**n, resolutions=10**n)
    figures = ok(name, since="2026-11-01", until="2026-11-07")
    assert figures.get("total_tickets", figures.get("total_resolutions")) == 110
    assert (figures["since"], figures["until"]) == ("2026-11-01", "2026-11-07")


@pytest.mark.parametrize(
    "name", ["tickets_resolution_analytics", "tickets_agent_analytics", "tickets_analytics"]
)
@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"since": "2026-02-30"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1700000000"}, "since"),  # not a timestamp either
        ({"until": "2026-11-30T00:00:00"}, "until"),
        ({"since": "2026-11-08", "until": "2026-11-07"}, "since"),
        ({"since": "2025-11-29", "until": "2026-11-30"}, "since"),  # 367 days
        ({"since": "0001-01-01"}, "since"),
        ({"sinse": "2026-11-01"}, "sinse"),
    ],
)
def test_bad_windows_are_400_naming_the_parameter(
    container: Container, name: str, params: dict[str, str], loc: str
) -> None:
    refused(name, loc, **params)
    assert container.analytics.reads == []  # type: ignore[attr-defined]


def test_a_window_of_366_days_is_taken(container: Container) -> None:
    figures = ok("tickets_resolution_analytics", since="2025-11-30", until="2026-11-30")
    assert figures["since"] == "2025-11-30"


def test_until_alone_reads_the_30_days_before_it(container: Container) -> None:
    assert ok("tickets_agent_analytics", until="2026-01-10")["since"] == "2025-12-12"
    assert ok("tickets_agent_analytics", until="0001-01-05")["since"] == "0001-01-01"


def test_since_alone_after_today_is_refused(container: Container) -> None:
    refused("tickets_resolution_analytics", "since", since="2026-12-01")


# --- the reads


def test_staff_resolution_analytics_has_every_field_the_web_client_reads(container: Container) -> None:
    record(container, "a", TODAY, resolutions=3, voided=1, confirmed=1, failed=1, reopened=1)
    record(container, "b", TODAY, satisfaction_sum=9, satisfaction_count=2, resolutions__AUTO_RESOLVE=2)
    figures = ok("tickets_resolution_analytics")
    for field in (
        "total_resolutions",
        "confirmed_successful",
        "confirmed_failed",
        "reopened_tickets",
        "average_satisfaction_score",
        "success_rate",
        "action_type_breakdown",
        "pending_feedback",
        "assumed_resolved",
        "rolled_back",
        "rollback_rate",
        "reopen_rate",
    ):
        assert field in figures
    assert figures["average_satisfaction_score"] == 4.5 and figures["rollback_rate"] == 33.33
    assert figures["action_type_breakdown"] == [
        {"autonomous_action": "AUTO_RESOLVE", "total": 2, "confirmed": 0, "failed": 0}
    ]


def test_agent_analytics_shows_the_caps_usage_and_the_controls_now(container: Container) -> None:
    for holder in ("r1", "r2"):
        assert container.caps.try_acquire(NOW, holder) is None
    assert container.caps.try_acquire(NOW - timedelta(hours=2), "r3") is None  # today, not this hour
    record(container, "a", TODAY, tickets=4, processed=2, decisions=2, confidence_milli=1500)
    record(container, "b", TODAY, resolutions=2, confirmed=1, actions__AUTO_RESOLVE=2)
    container.controls.update(ADMIN, ControlsUpdate(enabled=False, reason="incident"))
    figures = ok("tickets_agent_analytics")
    assert (figures["autonomous_actions_last_hour"], figures["autonomous_actions_today"]) == (2, 3)
    assert figures["caps"] == {"per_hour": 100, "per_day": 500}
    assert (figures["agent_status"], figures["rollout_percent"]) == ("paused", 100)
    assert figures["agent_processing_rate"] == 50.0 and figures["average_confidence_score"] == 0.75
    assert figures["resolution_success_rate"] == 50.0 and figures["autonomous_solutions"] == 2
    assert figures["actions_by_type"] == {"AUTO_RESOLVE": 2}
    assert figures["last_updated"].startswith("2026-11-30T10:30:00")


def test_shadow_mode_and_rollout_are_shown(container: Container) -> None:
    container.controls.update(
        ADMIN, ControlsUpdate(mode=AgentMode.SHADOW, rollout_percent=10, reason="pilot")
    )
    figures = ok("tickets_agent_analytics")
    assert (figures["agent_status"], figures["rollout_percent"]) == ("shadow", 10)


@pytest.mark.parametrize(
    "name", ["tickets_resolution_analytics", "tickets_agent_analytics", "tickets_weekly_report"]
)
def test_users_are_refused_and_nothing_is_read(container: Container, name: str) -> None:
    assert get(name, ALICE).status_code == 403
    assert container.analytics.reads == []  # type: ignore[attr-defined]


def test_a_read_is_one_store_read_whatever_the_tickets(container: Container) -> None:
    """The figures come from the tallies: the tickets themselves are never read."""
    for n in range(300):
        record(container, f"t{n}", TODAY - timedelta(days=n % 30), tickets=1, resolutions=1, confirmed=1)
    reads = container.analytics.reads  # type: ignore[attr-defined]
    listed: list[int] = []
    tickets = container.tickets
    original = tickets.list_all
    tickets.list_all = lambda *a: listed.append(1) or original(*a)  # type: ignore[method-assign]
    for name in ("tickets_resolution_analytics", "tickets_agent_analytics", "tickets_analytics"):
        reads.clear()
        figures = ok(name)
        assert reads == [(date(2026, 11, 1), TODAY)], name
        assert figures.get("total_tickets", figures.get("total_resolutions")) == 300
    reads.clear()
    ok("tickets_weekly_report")
    assert reads == [(date(2026, 11, 16), date(2026, 11, 29))]  # W47 and W48 in one read
    assert listed == []


# --- the weekly report


def seed_weeks(c: Container) -> None:
    w48 = date(2026, 11, 23)  # Monday of W48
    record(c, "w48a", w48, resolutions=100, confirmed=90, failed=1, reopened=1, tickets=250, processed=100)
    record(c, "w48b", w48 + timedelta(days=6), satisfaction_sum=45, satisfaction_count=10)
    record(c, "w48d", w48, resolutions__AUTO_RESOLVE=100, confirmed__AUTO_RESOLVE=90)
    record(c, "w48c", w48 + timedelta(days=2), decisions=100, confidence_milli=80000)
    record(c, "w47", w48 - timedelta(days=1), resolutions=10, voided=5, confirmed=2, tickets=10)
    record(c, "w49", TODAY, resolutions=1000, voided=1000)  # the week under way: not in the report


def test_the_weekly_report_defaults_to_the_last_complete_week(container: Container) -> None:
    seed_weeks(container)
    weekly = ok("tickets_weekly_report")
    assert weekly["week"] == "2026-W48"
    current, previous = weekly["current"], weekly["previous"]
    assert (current["since"], current["until"]) == ("2026-11-23", "2026-11-29")
    assert (previous["week"], previous["since"], previous["until"]) == (
        "2026-W47",
        "2026-11-16",
        "2026-11-22",
    )
    assert current["resolution"]["total_resolutions"] == 100 and current["resolution"]["success_rate"] == 90.0
    assert (
        previous["resolution"]["total_resolutions"] == 5 and previous["resolution"]["rollback_rate"] == 50.0
    )
    assert current["agent"]["agent_processing_rate"] == 40.0
    criteria = {c["name"]: c for c in weekly["criteria"]}
    assert criteria["resolution_success_rate"] == {
        "name": "resolution_success_rate",
        "figure": 90.0,
        "threshold": 80.0,
        "comparison": ">",
        "passed": True,
    }
    assert criteria["average_satisfaction_score"]["figure"] == 4.5
    assert all(c["passed"] is True for c in weekly["criteria"]) and weekly["all_passed"] is True


def test_a_week_without_data_passes_nothing(container: Container) -> None:
    weekly = ok("tickets_weekly_report", week="2026-W10")
    assert all(c["passed"] is None for c in weekly["criteria"]) and weekly["all_passed"] is None


def test_one_failing_criterion_fails_the_week(container: Container) -> None:
    record(container, "bad", date(2026, 11, 16), resolutions=10, voided=5, confirmed=2, tickets=10)
    weekly = ok("tickets_weekly_report", week="2026-W47")
    criteria = {c["name"]: c["passed"] for c in weekly["criteria"]}
    assert criteria["rollback_rate"] is False and criteria["average_satisfaction_score"] is None
    assert weekly["all_passed"] is False


@pytest.mark.parametrize("week", ["2025-W53", "2026-W00", "2026-W54", "2026-48", "2026W48", "0001-W01", "x"])
def test_a_bad_week_is_400(container: Container, week: str) -> None:
    refused("tickets_weekly_report", "week", week=week)


def test_an_unknown_format_is_400(container: Container) -> None:
    refused("tickets_weekly_report", "format", format="xlsx")


def test_the_weekly_report_as_csv(container: Container) -> None:
    seed_weeks(container)
    response = get("tickets_weekly_report", STAFF, week="2026-W48", format="csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="rollout-report-2026-W48.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_body().decode())))
    criteria = [r for r in rows if r["kind"] == "criterion"]
    assert len(criteria) == 9 and {r["passed"] for r in criteria} == {"pass"}
    success = next(r for r in criteria if r["name"] == "resolution_success_rate")
    assert (success["figure"], success["threshold"], success["comparison"]) == ("90.0", "80.0", ">")
    figures = {r["name"]: r for r in rows if r["kind"] == "figure"}
    assert figures["resolution.total_resolutions"]["figure"] == "100"
    assert figures["resolution.total_resolutions"]["previous_figure"] == "5"
    assert figures["resolution.action_type_breakdown.AUTO_RESOLVE.confirmed"]["figure"] == "90"
    assert figures["resolution.action_type_breakdown.AUTO_RESOLVE.confirmed"]["previous_figure"] == ""
    assert figures["agent.caps.per_day"]["figure"] == "500"
    assert "resolution.since" not in figures


def test_a_criterion_without_data_says_so_in_the_csv(container: Container) -> None:
    response = get("tickets_weekly_report", STAFF, week="2026-W10", format="csv")
    rows = list(csv.DictReader(io.StringIO(response.get_body().decode())))
    assert {r["passed"] for r in rows if r["kind"] == "criterion"} == {"no data"}


# --- ticket analytics (webapp-calls.md)


def test_staff_ticket_analytics_come_from_the_tallies(container: Container) -> None:
    record(container, "a", date(2026, 11, 24), tickets=6, closed=2, resolution_seconds=7200)
    record(container, "b", date(2026, 11, 30), tickets=1)
    figures = ok("tickets_analytics", since="2026-11-23", until="2026-11-30")
    assert (figures["open_tickets"], figures["closed_tickets"], figures["total_tickets"]) == (5, 2, 7)
    assert figures["avg_resolution_time_seconds"] == 3600.0 and figures["scope"] == "all"
    assert [(w["week"], w["count"]) for w in figures["tickets_per_week"]] == [
        ("2026-W48", 6),
        ("2026-W49", 1),
    ]


def test_a_user_sees_only_their_own_tickets(container: Container, clock: Clock) -> None:
    alice, bob = Principal(sub="alice"), Principal(sub="bob")
    record(container, "a", TODAY, tickets=1000, closed=999)  # everyone's: not shown to a user
    service = container.ticket_service
    clock.now = NOW - timedelta(days=40)
    service.create(alice, TicketCreate(issue_type="old one"))  # before the window
    clock.now = NOW - timedelta(days=8)
    done = service.create(alice, TicketCreate(issue_type="printer"))
    service.create(alice, TicketCreate(issue_type="vpn"))
    clock.now = NOW - timedelta(days=8) + timedelta(hours=2)
    service.change_status(alice, done.id, StatusChange(status=Status.CLOSED))
    clock.now = NOW
    service.create(bob, TicketCreate(issue_type="bob's"))
    figures = ok("tickets_analytics", ALICE)
    assert figures["scope"] == "mine"
    assert (figures["total_tickets"], figures["open_tickets"], figures["closed_tickets"]) == (2, 1, 1)
    assert figures["avg_resolution_time_seconds"] == 7200.0
    assert [(w["week"], w["count"]) for w in figures["tickets_per_week"] if w["count"]] == [("2026-W47", 2)]
    bobs = ok("tickets_analytics", BOB)
    assert (bobs["total_tickets"], bobs["open_tickets"]) == (1, 1)
    assert container.analytics.reads == []  # type: ignore[attr-defined]


def test_staff_may_ask_for_their_own(container: Container) -> None:
    container.ticket_service.create(
        Principal(sub="sam", roles=frozenset({"staff"})), TicketCreate(issue_type="x")
    )
    before = ok("tickets_analytics")["total_tickets"]  # 1 where creating a ticket records it, else 0
    record(container, "a", TODAY, tickets=50)
    assert ok("tickets_analytics", scope="mine")["total_tickets"] == 1
    assert ok("tickets_analytics")["total_tickets"] == before + 50


def test_a_users_read_stops_at_the_window(container: Container, clock: Clock) -> None:
    """Their index is read newest first and left at the first ticket older than the window."""
    alice = Principal(sub="alice")
    clock.now = NOW - timedelta(days=100)
    for _ in range(250):
        container.ticket_service.create(alice, TicketCreate(issue_type="old"))
    clock.now = NOW
    container.ticket_service.create(alice, TicketCreate(issue_type="new"))
    pages: list[str | None] = []
    original = container.tickets.list_for_owner

    def counted(owner: str, status: Any, limit: int, cursor: str | None) -> Any:
        pages.append(cursor)
        return original(owner, status, limit, cursor)

    container.tickets.list_for_owner = counted  # type: ignore[method-assign]
    assert ok("tickets_analytics", ALICE)["total_tickets"] == 1
    assert pages == [None]


def test_the_rollout_thresholds_come_from_the_settings(settings: Settings) -> None:
    strict = settings.model_copy(update={"rollout_min_success_rate": 95.0, "rollout_max_rollback_rate": 0.5})
    with installed(Container.in_memory(strict, clock=Clock(NOW))):
        criteria = {c["name"]: c["threshold"] for c in ok("tickets_weekly_report")["criteria"]}
    assert criteria["resolution_success_rate"] == 95.0 and criteria["rollback_rate"] == 0.5
    assert criteria["reopen_rate"] == 5.0  # the default


def test_concurrent_reads_all_answer(container: Container) -> None:
    """The reads share a small pool for the caps and controls: many at once must not starve it."""
    from concurrent.futures import ThreadPoolExecutor

    record(container, "a", TODAY, tickets=3)
    names = ["tickets_agent_analytics", "tickets_weekly_report", "tickets_resolution_analytics"] * 20
    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda n: get(n, STAFF).status_code, names))
    assert statuses == [200] * len(names)


def test_a_users_read_is_bounded_whatever_their_tickets(container: Container, clock: Clock) -> None:
    """A window before all of a user's many tickets reads at most MAX_OWN_TICKETS of them."""
    from shared.services import reports

    alice = Principal(sub="alice")
    for _ in range(30):
        container.ticket_service.create(alice, TicketCreate(issue_type="now"))
    pages: list[str | None] = []
    original = container.tickets.list_for_owner

    def counted(owner: str, status: Any, limit: int, cursor: str | None) -> Any:
        pages.append(cursor)
        return original(owner, status, limit, cursor)

    container.tickets.list_for_owner = counted  # type: ignore[method-assign]
    bound = pytest.MonkeyPatch()
    bound.setattr(reports, "MAX_OWN_TICKETS", 20)
    bound.setattr(reports, "OWN_PAGE", 10)
    try:
        figures = ok("tickets_analytics", ALICE, since="2026-01-01", until="2026-01-31")
    finally:
        bound.undo()
    assert figures["total_tickets"] == 0 and len(pages) == 2  # 20 of the 30 read, none in the window
