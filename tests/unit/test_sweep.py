"""The sweeper over the due index, driven by an injected clock: lost messages are sent again,
unanswered resolutions become assumed, and a run's work does not grow with the tickets."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from shared.config import Settings
from shared.container import Container, use_container
from shared.domain.due import DueItem, DueKind
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import (
    ActionType,
    Category,
    CheckMessage,
    FollowupMessage,
    Principal,
    ProcessMessage,
    ResolutionOutcome,
    Status,
    TicketCreate,
)
from shared.services.followups import FollowupOutcome
from shared.services.sweep import SweepTimings
from shared.storage.memory import InMemoryDueIndex, InMemoryMessageQueue
from tests.conftest import SECRET
from tests.unit.http_client import REGISTERED

ALICE = Principal(sub="alice")
DELAY = timedelta(seconds=86400)
WINDOW = timedelta(seconds=604800)
GRACE = timedelta(seconds=SweepTimings().grace_seconds)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def c(clock: Clock) -> Iterator[Container]:
    settings = Settings(AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://")  # type: ignore[call-arg]
    container = Container.in_memory(settings, clock=clock)
    use_container(container)
    yield container
    use_container(None)


def resolve(c: Container, confidence: float = 0.9) -> int:
    """A password ticket the embedded agent acts on: auto-resolved (or a scheduled follow-up)."""
    ticket = c.ticket_service.create(
        ALICE,
        TicketCreate(
            issue_type="Password reset", description="I forgot my password", category=Category.ACCOUNT
        ),
    )
    c.agent_worker.execute(
        ProcessMessage(ticket_id=ticket.id, request_id=f"r{ticket.id}", requested_by="alice")
    )
    return ticket.id


def items(c: Container) -> list[tuple[str, int, int]]:
    assert isinstance(c.due, InMemoryDueIndex)
    return [(i.kind.value, i.ticket_id, i.seq) for i in c.due.items()]


def sent(c: Container, queue: str = "followups") -> list[dict[str, Any]]:
    """The messages the sweeper sent since the last call, taken off (as if the queue lost them)."""
    assert isinstance(c.queue, InMemoryMessageQueue)
    found = [(p, d) for q, p, d in c.queue.sent if q == queue]
    assert all(d == 0 for _, d in found)  # sent when due, never delayed
    c.queue.sent[:] = [s for s in c.queue.sent if s[0] != queue]
    return [p for p, _ in found]


def test_nothing_is_sent_before_it_is_due(c: Container, clock: Clock) -> None:
    tid = resolve(c)
    assert c.tickets.get(tid).status == Status.RESOLVED  # type: ignore[union-attr]
    clock.now += DELAY - timedelta(seconds=1)
    report = c.sweeper.run()
    assert report.sent == 0 and sent(c) == [] and items(c) == [("followup", tid, 2)]


def test_a_followup_whose_message_was_lost_is_sent_again_after_the_grace_period(
    c: Container, clock: Clock
) -> None:
    tid = resolve(c)
    resolved_at = clock.now
    clock.now += DELAY
    assert c.sweeper.run().sent == 1
    [first] = sent(c)  # ... and the queue lost it (deleted, expired)
    assert FollowupMessage.model_validate(first) == FollowupMessage(
        ticket_id=tid, action_seq=2, due_at=resolved_at + DELAY
    )
    clock.now += GRACE - timedelta(seconds=1)
    assert c.sweeper.run().waiting == 1 and sent(c) == []  # its consumer may still be at it
    clock.now += timedelta(seconds=1)
    assert c.sweeper.run().resent == 1
    [again] = sent(c)
    assert again == first
    assert c.followup_service.run(FollowupMessage.model_validate(again)) == FollowupOutcome.SENT
    [notice] = c.notifications.list("alice", 10, None).results
    assert notice.ticket_id == tid
    # the follow-up's item is gone, the feedback window's is there, due a week after the resolution
    assert isinstance(c.due, InMemoryDueIndex)
    [window] = c.due.items()
    assert (window.kind, window.ticket_id, window.seq) == (DueKind.ASSUME, tid, 2)
    assert window.due_at == resolved_at + WINDOW
    clock.now += GRACE
    assert c.sweeper.run().sent == 0 and sent(c) == []


def test_a_message_delivered_twice_and_a_resend_after_it_ran_are_harmless(c: Container, clock: Clock) -> None:
    tid = resolve(c)
    clock.now += DELAY
    c.sweeper.run()
    [message] = [FollowupMessage.model_validate(m) for m in sent(c)]
    outcomes = [c.followup_service.run(message) for _ in range(3)]
    assert outcomes == [FollowupOutcome.SENT, FollowupOutcome.DUPLICATE, FollowupOutcome.DUPLICATE]
    assert len(c.notifications.list("alice", 10, None).results) == 1
    assert [i[0] for i in items(c)] == ["assume"]
    assert [e.action_type for e in c.tickets.history(tid, 10, None).results] == [
        ActionType.FOLLOWUP_SENT,
        ActionType.AUTO_RESOLVE,
    ]


def test_a_crash_after_the_followup_committed_is_finished_by_the_resend(c: Container, clock: Clock) -> None:
    tid = resolve(c)
    clock.now += DELAY
    c.sweeper.run()
    [message] = [FollowupMessage.model_validate(m) for m in sent(c)]
    add = c.due.add

    def crash(item: DueItem) -> None:
        raise TimeoutError("the worker died after its commit")

    c.due.add = crash  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        c.followup_service.run(message)
    c.due.add = add  # type: ignore[method-assign]
    assert items(c) == [("followup", tid, 2)]  # the follow-up committed; its item still stands
    clock.now += GRACE
    c.sweeper.run()
    [again] = [FollowupMessage.model_validate(m) for m in sent(c)]
    assert c.followup_service.run(again) == FollowupOutcome.DUPLICATE
    assert items(c) == [("assume", tid, 2)]  # finished: the window's item written, its own removed
    assert len(c.notifications.list("alice", 10, None).results) == 1


def test_an_unanswered_resolution_is_assumed_after_the_window_an_answered_one_is_left_alone(
    c: Container, clock: Clock
) -> None:
    resolved_at = clock.now
    quiet, answered = resolve(c), resolve(c)
    clock.now += DELAY
    c.sweeper.run()
    for m in sent(c):
        c.followup_service.run(FollowupMessage.model_validate(m))
    c.feedback_service.answer(
        ALICE, answered, ResolutionFeedback(resolution_confirmed=True, satisfaction_score=5)
    )
    clock.now = resolved_at + WINDOW - timedelta(seconds=1)
    assert c.sweeper.run().assumed == 0
    clock.now = resolved_at + WINDOW
    report = c.sweeper.run()
    assert (report.assumed, report.moot) == (1, 1) and items(c) == []
    ticket = c.tickets.get(quiet)
    assert ticket is not None and ticket.resolution is not None
    assert ticket.resolution.outcome == ResolutionOutcome.ASSUMED and ticket.status == Status.RESOLVED
    assert ticket.resolution.outcome_at == clock.now
    assert ticket.resolution.previous_outcome == ResolutionOutcome.PENDING
    [entry, *_] = c.tickets.history(quiet, 10, None).results
    assert entry.action_type == ActionType.RESOLUTION_ASSUMED and entry.executed_by == "system"
    assert entry.action_params["action_seq"] == 2
    other = c.tickets.get(answered)
    assert other is not None and other.resolution is not None
    assert other.resolution.outcome == ResolutionOutcome.CONFIRMED and other.status == Status.CLOSED
    # an answer after the window is still taken
    c.feedback_service.answer(ALICE, quiet, ResolutionFeedback(resolution_confirmed=False))
    ticket = c.tickets.get(quiet)
    assert ticket is not None and ticket.resolution is not None
    assert ticket.resolution.outcome == ResolutionOutcome.FAILED and ticket.status == Status.ESCALATED
    assert ticket.resolution.previous_outcome == ResolutionOutcome.ASSUMED


def test_an_assumption_runs_once_however_many_sweeps_meet_it(c: Container, clock: Clock) -> None:
    resolved_at = clock.now
    tid = resolve(c)
    clock.now += DELAY
    c.sweeper.run()
    c.followup_service.run(FollowupMessage.model_validate(sent(c)[0]))
    assert isinstance(c.due, InMemoryDueIndex)
    [window] = c.due.items()
    clock.now = resolved_at + WINDOW
    for _ in range(3):  # a crash after the commit left the item: written again, and met again
        c.due.add(window)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: c.sweeper.run(), range(4)))
    kinds = [e.action_type for e in c.tickets.history(tid, 10, None).results]
    assert kinds.count(ActionType.RESOLUTION_ASSUMED) == 1 and items(c) == []


def test_a_rolled_back_or_reopened_resolution_is_not_assumed(c: Container, clock: Clock) -> None:
    resolved_at = clock.now
    tid = resolve(c)
    clock.now += DELAY
    c.sweeper.run()
    c.followup_service.run(FollowupMessage.model_validate(sent(c)[0]))
    c.feedback_service.answer(ALICE, tid, ResolutionFeedback(resolution_confirmed=False))
    clock.now = resolved_at + WINDOW
    assert c.sweeper.run().moot == 1
    ticket = c.tickets.get(tid)
    assert ticket is not None and ticket.resolution is not None
    assert ticket.resolution.outcome == ResolutionOutcome.FAILED


def test_a_scheduled_check_whose_message_was_lost_still_escalates(c: Container, clock: Clock) -> None:
    tid = resolve(c)
    ticket = c.tickets.get(tid)
    assert ticket is not None
    # a scheduled follow-up the agent left in progress (the embedded agent auto-resolves passwords)
    from shared.domain.due import schedule

    assert isinstance(c.due, InMemoryDueIndex)
    c.due._rows.clear()
    changed, entry = ticket.advance(
        ActionType.SCHEDULE_FOLLOWUP,
        "autonomous_agent",
        clock.now,
        {"status": Status.IN_PROGRESS, "resolution": None},
    )
    c.tickets.save(changed, [entry])
    c.due.add(schedule(DueKind.CHECK, tid, changed.version, clock.now + DELAY, clock.now))
    clock.now += DELAY
    c.sweeper.run()
    [lost] = sent(c, "agent-checks")
    clock.now += GRACE
    c.sweeper.run()
    [again] = sent(c, "agent-checks")
    assert again == lost
    check = CheckMessage.model_validate(again)
    assert c.check_service.run(check.ticket_id, check.action_seq, check.due_at) == "escalated"
    assert c.tickets.get(tid).status == Status.ESCALATED  # type: ignore[union-attr]
    assert items(c) == []
    assert c.check_service.run(check.ticket_id, check.action_seq, check.due_at) == "not_needed"


def test_an_item_that_keeps_failing_is_dropped_after_its_sends(c: Container, clock: Clock) -> None:
    resolve(c)
    clock.now += DELAY
    limit = SweepTimings().max_sends
    for _ in range(limit):
        c.sweeper.run()
        assert len(sent(c)) == 1  # poisoned each time
        clock.now += GRACE
    report = c.sweeper.run()
    assert report.dropped == 1 and sent(c) == [] and items(c) == []


def test_a_failing_item_is_left_for_the_next_run_and_the_others_go_on(c: Container, clock: Clock) -> None:
    first, second = resolve(c), resolve(c)
    clock.now += DELAY
    send = c.queue.send
    calls = {"n": 0}

    def flaky(queue: str, message: Any, delay_seconds: int = 0) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("queue unreachable")
        send(queue, message, delay_seconds)

    c.queue.send = flaky  # type: ignore[method-assign]
    report = c.sweeper.run()
    assert (report.failed, report.sent) == (1, 1)
    report = c.sweeper.run()
    assert (report.sent, report.waiting) == (1, 1)
    assert sorted(m["ticket_id"] for m in sent(c)) == [first, second]


def test_a_runs_storage_requests_do_not_grow_with_the_tickets(clock: Clock) -> None:
    def requests_of_one_run(tickets: int) -> int:
        settings = Settings(  # type: ignore[call-arg]
            AUTH_JWT_SECRET=SECRET,
            RATELIMIT_STORAGE_URI="memory://",
            TICKET_CREATE_THROTTLE_RATE="100000/minute",
        )
        c = Container.in_memory(settings, clock=Clock())
        for _ in range(tickets):
            resolve(c)
        assert isinstance(c.due, InMemoryDueIndex)
        c.sweeper.run()  # the first run writes its cursor
        c.clock.now += timedelta(hours=1)  # type: ignore[attr-defined]
        before = c.due.requests
        report = c.sweeper.run()
        assert report.sent == 0
        return c.due.requests - before

    assert requests_of_one_run(10) == requests_of_one_run(1000) <= 3


def test_a_run_does_at_most_a_batch_of_items(clock: Clock) -> None:
    settings = Settings(AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://")  # type: ignore[call-arg]
    c = Container.in_memory(settings, clock=clock)
    assert isinstance(c.due, InMemoryDueIndex)
    batch = SweepTimings().batch
    for n in range(batch * 2 + 10):
        c.due.add(
            DueItem(kind=DueKind.FOLLOWUP, ticket_id=n + 1, seq=2, due_at=clock.now + timedelta(seconds=n))
        )
    clock.now += timedelta(hours=1)
    before = c.due.requests
    assert c.sweeper.run().sent == batch
    assert c.due.requests - before <= 3 + batch  # cursor, query, one mark per item, cursor
    assert c.sweeper.run().waiting == batch  # in flight: their consumer has them
    for m in sent(c):  # ... and finishes them
        c.due.remove(DueKind.FOLLOWUP, m["ticket_id"], m["action_seq"], datetime.fromisoformat(m["due_at"]))
    assert c.sweeper.run().sent == batch
    for m in sent(c):
        c.due.remove(DueKind.FOLLOWUP, m["ticket_id"], m["action_seq"], datetime.fromisoformat(m["due_at"]))
    assert c.sweeper.run().sent == 10


class Context:
    invocation_id = "test-invocation"


def test_the_timer_function_runs_one_sweep(c: Container, clock: Clock) -> None:
    [function] = [f.get_user_function() for f in REGISTERED if f.get_function_name() == "followups_sweep"]
    resolve(c)
    clock.now += DELAY
    function(TimerRequest(past_due=False), Context())
    assert len(sent(c)) == 1


def test_a_due_index_failing_after_the_commit_costs_neither_the_post_nor_a_second_one(clock: Clock) -> None:
    posts: list[str] = []

    class Hook:
        def post(self, text: str) -> bool:
            posts.append(text)
            return True

    settings = Settings(AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://")  # type: ignore[call-arg]
    c = Container.in_memory(settings, clock=clock, webhook=Hook())
    tid = resolve(c)
    clock.now += DELAY
    c.sweeper.run()
    [message] = [FollowupMessage.model_validate(m) for m in sent(c)]
    add = c.due.add

    def down(item: DueItem) -> None:
        raise ConnectionError("table unreachable")

    c.due.add = down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):  # the host retries the message
        c.followup_service.run(message)
    assert len(posts) == 1  # posted after the commit, before the due index failed
    c.due.add = add  # type: ignore[method-assign]
    assert c.followup_service.run(message) == FollowupOutcome.DUPLICATE
    assert len(posts) == 1 and items(c) == [("assume", tid, 2)]
