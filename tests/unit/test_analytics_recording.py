"""The repository decorator that records analytics (shared/services/analytics.py): after the commit,
once per commit, never failing the request; a redelivery records again only what is young enough;
the sweeper folds each run, and a failing fold fails no sweep."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import Settings
from shared.container import Container
from shared.domain.analytics import REPLAY_SECONDS
from shared.domain.decision import Thresholds
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import Category, Principal, ProcessMessage, TicketCreate
from shared.domain.tally import Tallies
from shared.errors import ConcurrencyConflict
from shared.services.recompute import FIRST_DAY, LAST_DAY, recount_all
from shared.services.sweep import SweepTimings
from shared.storage.memory import InMemoryAnalytics
from tests.conftest import SECRET

ALICE = Principal(sub="alice")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Spy(InMemoryAnalytics):
    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.records: list[str] = []
        self.folds: list[int] = []
        self.fold_fails = False

    def record(self, event_id: str, deltas: Tallies) -> None:
        if self.down:
            raise ConnectionError("down")
        self.records.append(event_id)
        super().record(event_id, deltas)

    def fold(self, limit: int) -> int:
        self.folds.append(limit)
        if self.fold_fails:
            raise ConnectionError("down")
        return 0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> Spy:
    return Spy()


@pytest.fixture
def c(clock: Clock, store: Spy) -> Iterator[Container]:
    settings = Settings(AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://")  # type: ignore[call-arg]
    yield Container.in_memory(settings, clock=clock, analytics=store)


def exact(c: Container, store: Spy) -> bool:
    recounted, _ = recount_all(c.recording.inner, Thresholds())
    return store.read(FIRST_DAY, LAST_DAY) == recounted


def resolved(c: Container, request: str = "r1") -> tuple[int, ProcessMessage]:
    ticket = c.ticket_service.create(
        ALICE,
        TicketCreate(
            issue_type="Password reset", description="I forgot my password", category=Category.ACCOUNT
        ),
    )
    message = ProcessMessage(ticket_id=ticket.id, request_id=request, requested_by="alice")
    assert c.agent_worker.execute(message) == "AUTO_RESOLVE"
    return ticket.id, message


def test_each_commit_is_recorded_once_under_its_version(c: Container, store: Spy) -> None:
    ticket_id, _ = resolved(c)
    answer = ResolutionFeedback(resolution_confirmed=False, feedback_text="no")
    c.feedback_service.answer(ALICE, ticket_id, answer)  # FEEDBACK_RECEIVED and REOPEN: one commit
    assert store.records == [f"{ticket_id}-1", f"{ticket_id}-2", f"{ticket_id}-4"]
    assert exact(c, store)


def test_a_failed_record_fails_no_request_and_is_logged(
    c: Container, store: Spy, caplog: pytest.LogCaptureFixture
) -> None:
    store.down = True
    with caplog.at_level(logging.WARNING, logger="resolvemeq.analytics"):
        ticket_id, _ = resolved(c)
    assert c.tickets.get(ticket_id) is not None
    assert f"event {ticket_id}-2 committed but not recorded" in caplog.text
    assert not exact(c, store)


def test_nothing_is_recorded_when_the_commit_fails(c: Container, store: Spy) -> None:
    ticket_id, _ = resolved(c)
    ticket = c.tickets.get(ticket_id)
    assert ticket is not None
    from shared.domain import changes
    from shared.domain.models import Status, StatusChange

    stale = ticket.model_copy(update={"version": 1})  # someone committed version 2 first
    changed, entry = changes.change_status(stale, StatusChange(status=Status.OPEN), "s", c.clock())
    with pytest.raises(ConcurrencyConflict):
        c.tickets.save(changed, [entry])
    assert store.records == [f"{ticket_id}-1", f"{ticket_id}-2"]


def died(c: Container) -> None:
    """The process that kept the failed records for retry is gone (a crash, a scale-in)."""
    c.recorded._unrecorded.clear()


def test_a_redelivery_records_a_lost_commit_again_while_young(c: Container, store: Spy, clock: Clock) -> None:
    store.down = True
    ticket_id, message = resolved(c)
    died(c)
    store.down = False
    clock.now += timedelta(seconds=REPLAY_SECONDS - 1)
    assert c.agent_worker.execute(message) == "duplicate"
    assert store.records == [f"{ticket_id}-2"]  # the creation was lost for good: recompute's
    c.agent_worker.execute(message)
    assert store.records == [f"{ticket_id}-2", f"{ticket_id}-2"]  # again: the store counts it once
    recounted, _ = recount_all(c.recording.inner, Thresholds())
    assert store.read(FIRST_DAY, LAST_DAY) != recounted  # only the creation is missing
    [day] = recounted
    assert recounted[day] - store.read(FIRST_DAY, LAST_DAY)[day] == {"tickets": 1}


def test_a_redelivery_after_the_replay_window_records_nothing(c: Container, store: Spy, clock: Clock) -> None:
    store.down = True
    _, message = resolved(c)
    died(c)
    store.down = False
    clock.now += timedelta(seconds=REPLAY_SECONDS + 1)  # the store may have folded it: a second count
    assert c.agent_worker.execute(message) == "duplicate"
    assert store.records == []


def test_a_used_link_records_its_answer_and_reopen_again_as_one_commit(
    c: Container, store: Spy, clock: Clock
) -> None:
    from shared.container import link_settings
    from shared.services.links import LinkUsed, answer_links

    ticket_id, _ = resolved(c)
    ticket = c.tickets.get(ticket_id)
    assert ticket is not None
    url = answer_links(link_settings(c.settings), ticket, 2, clock())["no"]
    token = url.rsplit("/", 2)[-2]
    store.down = True
    c.link_service.answer(token, None, "still broken")
    store.down = False
    assert not exact(c, store)
    with pytest.raises(LinkUsed):
        c.link_service.answer(token, None, "still broken")  # used: its commit is recorded again
    assert store.records[-1] == f"{ticket_id}-4"
    assert exact(c, store)


def test_the_sweeper_folds_each_run_and_a_failing_fold_fails_no_sweep(c: Container, store: Spy) -> None:
    c.sweeper.run()
    assert store.folds == [SweepTimings().fold]
    store.fold_fails = True
    report = c.sweeper.run()
    assert report.folded == 0 and store.folds == [SweepTimings().fold] * 2


def test_records_lost_in_an_outage_are_written_by_the_next_record_once_storage_is_back(
    c: Container, store: Spy, clock: Clock
) -> None:
    store.down = True
    first, _ = resolved(c, "r1")  # the creation and the auto-resolution: neither recorded
    assert store.records == [] and not exact(c, store)
    store.down = False
    clock.now += timedelta(seconds=REPLAY_SECONDS - 1)
    second, _ = resolved(c, "r2")  # its first record writes the kept ones first, oldest first
    assert store.records == [f"{first}-1", f"{first}-2", f"{second}-1", f"{second}-2"]
    assert exact(c, store)


def test_the_sweepers_fold_writes_records_kept_from_an_outage(c: Container, store: Spy) -> None:
    store.down = True
    ticket_id, _ = resolved(c)
    store.down = False
    c.sweeper.run()  # no write since storage came back: the fold retries them
    assert store.records == [f"{ticket_id}-1", f"{ticket_id}-2"] and store.folds
    assert exact(c, store)


class LandsThenFails(Spy):
    """A record whose insert landed but whose answer was lost (a timeout after the write)."""

    def record(self, event_id: str, deltas: Tallies) -> None:
        self.records.append(event_id)
        InMemoryAnalytics.record(self, event_id, deltas)  # it lands, whatever happens next
        if self.down:
            raise TimeoutError("answer lost")


def test_a_retried_record_that_had_landed_counts_once(clock: Clock) -> None:
    store = LandsThenFails()
    settings = Settings(AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://")  # type: ignore[call-arg]
    c = Container.in_memory(settings, clock=clock, analytics=store)
    original = store.record

    def flaky(event_id: str, deltas: Tallies) -> None:
        store.down = event_id.endswith("-2")  # the auto-resolution's answer is lost
        original(event_id, deltas)

    store.record = flaky  # type: ignore[method-assign]
    ticket_id, _ = resolved(c)
    store.record = original  # type: ignore[method-assign]
    store.down = False
    c.sweeper.run()
    assert store.records.count(f"{ticket_id}-2") == 2  # written twice ...
    assert exact(c, store)  # ... counted once


def test_records_kept_past_the_replay_window_are_dropped_for_recompute(
    c: Container, store: Spy, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store.down = True
    ticket_id, _ = resolved(c)
    store.down = False
    clock.now += timedelta(seconds=REPLAY_SECONDS + 1)  # its tombstone may be gone: a second count
    with caplog.at_level(logging.WARNING, logger="resolvemeq.analytics"):
        c.sweeper.run()
    assert store.records == [] and f"event {ticket_id}-2 not recorded in time" in caplog.text
    c.sweeper.run()
    assert store.records == []  # dropped, not retried forever
