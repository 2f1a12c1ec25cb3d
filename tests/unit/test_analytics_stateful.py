"""The analytics tallies, as the services record them, against a from-scratch recount.

A Hypothesis state machine drives the in-memory container through random sequences of events:
creations, agent runs (duplicate deliveries too, and a record lost between the commit and the
record then repaired by the redelivery), feedback and re-submitted feedback, assumed resolutions
through the sweeper, rollbacks, people's status changes and the kill switch / shadow mode. After
every step the stored tallies equal `manage analytics recompute`'s recount over the fake's tickets
and histories, and a recompute finds nothing to repair.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from shared.config import Settings
from shared.container import Container
from shared.domain.decision import Thresholds
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import (
    ActionType,
    AgentMode,
    Category,
    ControlsUpdate,
    Principal,
    ProcessMessage,
    Status,
    StatusChange,
    TicketCreate,
)
from shared.domain.rollback import RollbackRequest
from shared.domain.tally import Tallies
from shared.errors import Conflict, NotFound
from shared.services.recompute import FIRST_DAY, LAST_DAY, recompute, recount_all
from shared.storage.memory import InMemoryAnalytics
from tests.conftest import SECRET

ALICE = Principal(sub="alice")
STAFF = Principal(sub="sam", roles=frozenset({"staff"}))
ADMIN = Principal(sub="ada", roles=frozenset({"admin"}))
TICKETS = {
    "password": ("Password reset", "I forgot my password and cannot log in", Category.ACCOUNT),
    "security": (
        "Phishing",
        "I clicked a phishing link and entered my password, account compromised",
        Category.SECURITY,
    ),
    "vague": ("Help", "asdf qwer", Category.OTHER),
    "laptop": ("New laptop", "I need a replacement laptop, mine is broken", Category.HARDWARE),
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Flaky(InMemoryAnalytics):
    """Fails its records while `down` (an outage between a commit and its record)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def record(self, event_id: str, deltas: Tallies) -> None:
        if self.down:
            raise ConnectionError("analytics storage is down")
        super().record(event_id, deltas)


class Analytics(RuleBasedStateMachine):
    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.store = Flaky()
        config = Settings(  # type: ignore[call-arg]
            AUTH_JWT_SECRET=SECRET,
            RATELIMIT_STORAGE_URI="memory://",
            TICKET_CREATE_THROTTLE_RATE="10000/minute",
            ROLLBACK_THROTTLE_RATE="10000/hour",
        )
        self.c = Container.in_memory(config, clock=self.clock, analytics=self.store)
        self.thresholds = Thresholds(config.confidence_high, config.confidence_medium)
        self.requests = 0

    def tick(self, seconds: int = 61) -> None:
        self.clock.now += timedelta(seconds=seconds)

    @rule(target=tickets, kind=st.sampled_from(sorted(TICKETS)))
    def create(self, kind: str) -> int:
        issue, description, category = TICKETS[kind]
        self.tick()
        created = self.c.ticket_service.create(
            ALICE, TicketCreate(issue_type=issue, description=description, category=category)
        )
        return created.id

    def message(self, ticket_id: int, force: bool) -> ProcessMessage:
        self.requests += 1
        return ProcessMessage(
            ticket_id=ticket_id, request_id=f"r{self.requests}", requested_by="sam", force=force
        )

    @rule(ticket=tickets, force=st.booleans(), copies=st.integers(1, 3))
    def process(self, ticket: int, force: bool, copies: int) -> None:
        self.tick()
        message = self.message(ticket, force)
        for _ in range(copies):  # at-least-once delivery
            self.c.agent_worker.execute(message)

    @rule(ticket=tickets, force=st.booleans())
    def process_losing_the_record_then_redelivered(self, ticket: int, force: bool) -> None:
        self.tick()
        message = self.message(ticket, force)
        self.store.down = True
        try:
            self.c.agent_worker.execute(message)  # commits; its record fails, the request does not
        finally:
            self.store.down = False
        self.c.agent_worker.execute(message)  # the redelivery finds it done and records it again

    @rule(ticket=tickets, confirmed=st.booleans(), score=st.sampled_from([None, 0, 1, 3, 5]))
    def feedback(self, ticket: int, confirmed: bool, score: int | None) -> None:
        self.tick()
        try:
            self.c.feedback_service.answer(
                ALICE,
                ticket,
                ResolutionFeedback(resolution_confirmed=confirmed, satisfaction_score=score),
            )
        except (Conflict, NotFound):
            pass  # no resolution to answer (none, or voided)

    @rule()
    def feedback_window_ends(self) -> None:
        self.tick(self.c.settings.feedback_window_seconds + 600)
        self.c.sweeper.run()

    @rule(ticket=tickets, force=st.booleans())
    def rollback(self, ticket: int, force: bool) -> None:
        self.tick()
        history = self.c.tickets.history(ticket, 100, None).results
        actions = [e for e in history if e.rollback_possible and not e.rolled_back]
        if not actions:
            return
        try:
            self.c.rollback_service.rollback(ADMIN, actions[0].id, RollbackRequest(force=force))
        except Conflict:
            pass  # changed since (without force), or already rolled back

    @rule(
        ticket=tickets,
        status=st.sampled_from([Status.OPEN, Status.RESOLVED, Status.CLOSED, Status.ESCALATED]),
    )
    def staff_changes_status(self, ticket: int, status: Status) -> None:
        self.tick()
        self.c.ticket_service.change_status(STAFF, ticket, StatusChange(status=status))

    @rule(ticket=tickets)
    def owner_closes(self, ticket: int) -> None:
        self.tick()
        self.c.ticket_service.change_status(ALICE, ticket, StatusChange(status=Status.CLOSED))

    @rule(enabled=st.booleans(), mode=st.sampled_from(list(AgentMode)))
    def controls(self, enabled: bool, mode: AgentMode) -> None:
        self.tick()
        self.c.controls.update(ADMIN, ControlsUpdate(enabled=enabled, mode=mode, reason="test"))

    @rule(days=st.integers(1, 3))
    def days_pass(self, days: int) -> None:
        self.tick(days * 86400)

    @invariant()
    def stored_equals_a_recount_from_scratch(self) -> None:
        recounted, _ = recount_all(self.c.recording.inner, self.thresholds)
        assert self.store.read(FIRST_DAY, LAST_DAY) == recounted

    @invariant()
    def recompute_finds_nothing_to_repair(self) -> None:
        report = recompute(self.c.recording.inner, self.store, self.thresholds, self.clock, dry_run=True)
        assert report.differences == []


TestAnalytics: Any = Analytics.TestCase
TestAnalytics.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_recompute_repairs_a_lost_record_once_and_then_finds_nothing() -> None:
    m = Analytics()
    ticket = m.create("password")
    m.store.down = True
    m.c.agent_worker.execute(m.message(ticket, False))  # committed, not recorded, no redelivery
    m.store.down = False
    report = recompute(m.c.recording.inner, m.store, m.thresholds, m.clock)
    day = m.clock.now.date()
    assert {(d.day, d.counter, d.stored, d.recomputed) for d in report.differences} >= {
        (day, "actions:AUTO_RESOLVE", 0, 1),
        (day, "resolutions", 0, 1),
    }
    assert report.repaired == [f"repair-{m.clock.now:%Y%m%dT%H%M%S%f}-{day:%Y%m%d}"]
    for event in report.repaired:  # a retried repair applies nothing twice
        m.store.record(event, {day: {"resolutions": 1}})  # type: ignore[dict-item]
    again = recompute(m.c.recording.inner, m.store, m.thresholds, m.clock)
    assert again.differences == [] and again.repaired == []
    assert date(2000, 1, 1) == FIRST_DAY
    assert ActionType.AUTO_RESOLVE.value in m.store.read(day, day)[day].keys().__str__()
