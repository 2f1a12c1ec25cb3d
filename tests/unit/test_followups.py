"""The follow-up consumer with in-memory storage: sent once, skipped when moot. (How it is scheduled,
through the due index and the sweeper, is tests/unit/test_sweep.py.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.domain import followups
from shared.domain.due import DueKind
from shared.domain.models import (
    ActionType,
    Category,
    FollowupMessage,
    Principal,
    ProcessMessage,
    RecordStatus,
    ResolutionOutcome,
    Status,
    StatusChange,
    TicketCreate,
)
from shared.ports import MAX_QUEUE_DELAY_SECONDS
from shared.services.followups import FollowupOutcome
from shared.storage.memory import InMemoryDueIndex, InMemoryMessageQueue
from tests.conftest import SECRET
from tests.unit.http_client import REGISTERED

ALICE = Principal(sub="alice")
STAFF = Principal(sub="sam", roles=frozenset({"staff"}))
DELAY = 86400
DESCRIPTION = "I forgot my password and need to reset it. It was hunter2."


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FakeWebhook:
    """Records each post; answers as told (True, False, or raising)."""

    def __init__(self, answer: bool | Exception = True) -> None:
        self.answer = answer
        self.posts: list[str] = []
        self._lock = threading.Lock()

    def post(self, text: str) -> bool:
        with self._lock:
            self.posts.append(text)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def webhook() -> FakeWebhook:
    return FakeWebhook()


def build(clock: Clock, webhook: FakeWebhook | None, delay: int = DELAY, **overrides: Any) -> Container:
    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://", FOLLOWUP_DELAY_SECONDS=str(delay)
    )
    return Container.in_memory(settings, clock=clock, webhook=webhook, **overrides)


@pytest.fixture
def c(clock: Clock, webhook: FakeWebhook) -> Iterator[Container]:
    container = build(clock, webhook)
    use_container(container)
    yield container
    use_container(None)


def auto_resolved(c: Container, owner: Principal = ALICE) -> FollowupMessage:
    """A ticket the agent auto-resolved; its follow-up message (naming no due item: the due index
    has tests of its own)."""
    ticket = c.ticket_service.create(
        owner, TicketCreate(issue_type="Password reset", description=DESCRIPTION, category=Category.ACCOUNT)
    )
    outcome = c.agent_worker.execute(
        ProcessMessage(ticket_id=ticket.id, request_id=f"r{ticket.id}", requested_by=owner.sub)
    )
    assert outcome == "AUTO_RESOLVE"
    return scheduled(c)[-1]


def scheduled(c: Container) -> list[FollowupMessage]:
    """The follow-ups the worker put in the due index, as messages naming no item."""
    assert isinstance(c.due, InMemoryDueIndex)
    items = [i for i in c.due.items() if i.kind == DueKind.FOLLOWUP]
    return [
        FollowupMessage(ticket_id=i.ticket_id, action_seq=i.seq) for i in sorted(items, key=lambda i: i.seq)
    ]


def taken(c: Container) -> list[FollowupMessage]:
    """The follow-up messages put back on the queue so far, with their delays checked, taken off."""
    assert isinstance(c.queue, InMemoryMessageQueue)
    found = [FollowupMessage.model_validate(p) for q, p, _ in c.queue.sent if q == "followups"]
    delays = [d for q, _, d in c.queue.sent if q == "followups"]
    assert all(0 <= d <= MAX_QUEUE_DELAY_SECONDS for d in delays)
    c.queue.sent[:] = [s for s in c.queue.sent if s[0] != "followups"]
    return found


def entries(c: Container, ticket_id: int) -> list[Any]:
    return c.tickets.history(ticket_id, 100, None).results


def kinds(c: Container, ticket_id: int) -> list[str]:
    return [e.action_type.value for e in entries(c, ticket_id)]


def notices(c: Container, user: str = "alice") -> list[Any]:
    return c.notifications.list(user, 100, None).results


def answer(c: Container, ticket_id: int, outcome: ResolutionOutcome) -> None:
    """The owner answered (or the resolution was voided), as the feedback or rollback would save it."""
    ticket = c.tickets.get(ticket_id)
    assert ticket is not None and ticket.resolution is not None
    resolution = ticket.resolution.model_copy(update={"outcome": outcome})
    changed, entry = ticket.advance(
        ActionType.FEEDBACK_RECEIVED, "alice", ticket.updated_at, {"resolution": resolution}
    )
    c.tickets.save(changed, [entry])


# The pure rules


def test_followup_sent_sets_the_time_and_records_a_system_entry(c: Container, clock: Clock) -> None:
    message = auto_resolved(c)
    ticket = c.tickets.get(message.ticket_id)
    assert ticket is not None
    clock.now += timedelta(days=1)
    changed, entry = followups.followup_sent(ticket, message.action_seq, clock.now)
    assert changed.version == ticket.version + 1 == entry.seq
    assert changed.resolution is not None and changed.resolution.followup_sent_at == clock.now
    assert changed.resolution.outcome == ResolutionOutcome.PENDING and changed.status == Status.RESOLVED
    assert entry.action_type == ActionType.FOLLOWUP_SENT and entry.executed_by == "system"
    assert entry.action_params == {"action_seq": 2, "notification_id": f"followup-{ticket.id}-2"}
    assert entry.before_state["resolution"]["followup_sent_at"] is None
    assert entry.after_state["resolution"]["followup_sent_at"] is not None
    assert not entry.rollback_possible


def test_the_webhook_text_names_the_ticket_and_owner_only() -> None:
    ticket_owner = Principal(sub="<!channel> & co")
    c = build(Clock(), None)
    message = auto_resolved(c, ticket_owner)
    ticket = c.tickets.get(message.ticket_id)
    assert ticket is not None
    text = followups.webhook_text(ticket)
    assert f"#{ticket.id}" in text and "Is everything still working?" in text
    assert "&lt;!channel&gt; &amp; co" in text and "<!channel>" not in text  # no mass mention
    assert "hunter2" not in text and "Password reset" not in text


# The consumer


def test_a_followup_is_sent_in_app_and_on_the_webhook_and_recorded(
    c: Container, clock: Clock, webhook: FakeWebhook
) -> None:
    message = auto_resolved(c)
    resolved_at = clock.now
    clock.now += timedelta(seconds=DELAY, milliseconds=250)
    assert c.followup_service.run(message) == FollowupOutcome.SENT
    ticket = c.tickets.get(message.ticket_id)
    assert ticket is not None and ticket.version == 3 and ticket.status == Status.RESOLVED
    assert ticket.resolution is not None and ticket.resolution.followup_sent_at == clock.now
    [sent, resolved] = entries(c, ticket.id)
    assert (sent.action_type, sent.executed_by, resolved.action_type) == (
        "FOLLOWUP_SENT",
        "system",
        "AUTO_RESOLVE",
    )
    [notice] = notices(c)
    assert (
        notice.id == f"followup-{ticket.id}-2" and notice.kind == "followup" and notice.ticket_id == ticket.id
    )
    assert notice.title == "Is everything still working?" and "hunter2" not in notice.message
    assert notice.created_at == resolved_at + timedelta(seconds=DELAY)  # when it was due
    assert (
        set(notice.links) == {"ticket", "yes", "no"}
        and notice.links["ticket"] == f"/api/tickets/{ticket.id}/"
    )
    assert (
        notice.links["yes"].startswith(c.settings.public_base_url + "/api/feedback/")
        and notice.links["yes"] != (notice.links["no"])
    )  # one-click answers: tests/unit/test_feedback_links.py
    assert len(webhook.posts) == 1 and f"#{ticket.id}" in webhook.posts[0]
    assert notice.links["yes"] in webhook.posts[0] and notice.links["no"] in webhook.posts[0]
    _, record = c.tickets.get_with_request(ticket.id, "followup-2")
    assert record is not None and record.status == RecordStatus.COMPLETED
    assert record.action_type == ActionType.FOLLOWUP_SENT and record.ticket_version == 3
    assert notices(c, "bob") == [] and c.notifications.list(None, 10, None).results == []


def test_the_same_message_delivered_again_does_nothing_more(c: Container, webhook: FakeWebhook) -> None:
    message = auto_resolved(c)
    assert c.followup_service.run(message) == FollowupOutcome.SENT
    for _ in range(3):
        assert c.followup_service.run(message) == FollowupOutcome.DUPLICATE
    assert kinds(c, message.ticket_id) == ["FOLLOWUP_SENT", "AUTO_RESOLVE"]
    assert len(notices(c)) == 1 and len(webhook.posts) == 1


def test_concurrent_deliveries_send_once(c: Container, webhook: FakeWebhook) -> None:
    messages = [auto_resolved(c) for _ in range(5)]
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(c.followup_service.run, [m for m in messages for _ in range(4)]))
    assert outcomes.count(FollowupOutcome.SENT) == 5
    assert set(outcomes) <= {FollowupOutcome.SENT, FollowupOutcome.DUPLICATE, FollowupOutcome.WAITING}
    # a delivery that met a live claim put its message back: it finds the follow-up done
    for again in taken(c):
        assert c.followup_service.run(again) == FollowupOutcome.DUPLICATE
    for m in messages:
        assert kinds(c, m.ticket_id) == ["FOLLOWUP_SENT", "AUTO_RESOLVE"]
    assert len(notices(c)) == 5 and len(webhook.posts) == 5


def test_a_crash_between_the_notification_and_the_commit_is_repaired_by_the_redelivery(
    c: Container, webhook: FakeWebhook, clock: Clock
) -> None:
    message = auto_resolved(c)
    save = c.tickets.save
    calls = {"n": 0}

    def failing_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            kwargs["before_commit"]()  # the notice lands (it is written before the commit) ...
            raise TimeoutError("storage timed out")  # ... and the commit times out
        save(*args, **kwargs)

    c.tickets.save = failing_once  # type: ignore[method-assign]
    clock.now += timedelta(days=1)
    with pytest.raises(TimeoutError):
        c.followup_service.run(message)
    assert len(notices(c)) == 1 and kinds(c, message.ticket_id) == ["AUTO_RESOLVE"]  # notified, not recorded
    assert webhook.posts == []  # nothing posted for a follow-up that did not commit
    _, record = c.tickets.get_with_request(message.ticket_id, "followup-2")
    assert record is None  # the claim was released: the host's retry runs at once
    clock.now += timedelta(seconds=5)  # the retry runs later: the notification's time does not move
    assert c.followup_service.run(message) == FollowupOutcome.SENT
    assert len(notices(c)) == 1 and kinds(c, message.ticket_id) == ["FOLLOWUP_SENT", "AUTO_RESOLVE"]
    assert len(webhook.posts) == 1


def test_a_dead_workers_claim_is_waited_for_then_taken_over(
    c: Container, webhook: FakeWebhook, clock: Clock
) -> None:
    message = auto_resolved(c)
    claim = c.followup_service._once.claim(message.ticket_id, "followup-2")  # a worker that then died
    assert claim.outcome == "claimed"
    assert c.followup_service.run(message) == FollowupOutcome.WAITING
    [back] = taken(c)
    assert back == message and kinds(c, message.ticket_id) == ["AUTO_RESOLVE"] and webhook.posts == []
    clock.now += timedelta(seconds=c.settings.agent_claim_seconds + 1)
    assert c.followup_service.run(back) == FollowupOutcome.SENT
    assert len(webhook.posts) == 1 and len(notices(c)) == 1


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (ResolutionOutcome.CONFIRMED, "answered"),
        (ResolutionOutcome.FAILED, "answered"),
        (ResolutionOutcome.ASSUMED, "answered"),
        (ResolutionOutcome.VOIDED, "voided"),
    ],
)
def test_an_answered_or_voided_resolution_sends_nothing(
    c: Container, webhook: FakeWebhook, outcome: ResolutionOutcome, reason: str
) -> None:
    message = auto_resolved(c)
    answer(c, message.ticket_id, outcome)
    before = c.tickets.get(message.ticket_id)
    assert c.followup_service.run(message) == reason
    assert c.tickets.get(message.ticket_id) == before  # unchanged
    assert notices(c) == [] and webhook.posts == []
    _, record = c.tickets.get_with_request(message.ticket_id, "followup-2")
    assert record is not None and record.status == RecordStatus.COMPLETED and record.outcome == reason
    assert record.action_type is None
    assert c.followup_service.run(message) == FollowupOutcome.DUPLICATE


def test_a_rolled_back_auto_resolution_sends_nothing(c: Container, webhook: FakeWebhook) -> None:
    message = auto_resolved(c)
    ticket = c.tickets.get(message.ticket_id)
    action = c.tickets.get_entry(message.ticket_id, message.action_seq)
    assert ticket is not None and action is not None and ticket.resolution is not None
    # what a rollback leaves: the state before, the resolution voided, the action marked
    voided = ticket.resolution.model_copy(update={"outcome": ResolutionOutcome.VOIDED})
    changed, entry = ticket.advance(
        ActionType.ROLLBACK, "ada", ticket.updated_at, {"status": Status.NEW, "resolution": voided}
    )
    marked = action.model_copy(update={"rolled_back": True})
    c.tickets.save(changed, [entry], updated=[marked])
    assert c.followup_service.run(message) == "not_resolved"
    assert notices(c) == [] and webhook.posts == []


def test_a_ticket_no_longer_resolved_sends_nothing(c: Container, webhook: FakeWebhook) -> None:
    message = auto_resolved(c)
    c.ticket_service.change_status(STAFF, message.ticket_id, StatusChange(status=Status.ESCALATED))
    assert c.followup_service.run(message) == "not_resolved"
    assert kinds(c, message.ticket_id) == ["STATUS_CHANGE", "AUTO_RESOLVE"]
    assert notices(c) == [] and webhook.posts == []


def test_a_resolution_a_later_auto_resolution_made_is_followed_up_by_its_own_message(
    c: Container, webhook: FakeWebhook
) -> None:
    first = auto_resolved(c)
    forced = ProcessMessage(ticket_id=first.ticket_id, request_id="again", requested_by="sam", force=True)
    assert c.agent_worker.execute(forced) == "AUTO_RESOLVE"
    [second] = [m for m in scheduled(c) if m.action_seq == 3]
    assert c.followup_service.run(first) == "superseded"
    assert notices(c) == [] and webhook.posts == []
    assert c.followup_service.run(second) == FollowupOutcome.SENT
    assert [n.id for n in notices(c)] == [f"followup-{first.ticket_id}-3"] and len(webhook.posts) == 1


def test_a_resolution_kept_through_a_persons_changes_is_still_followed_up(
    c: Container, webhook: FakeWebhook
) -> None:
    message = auto_resolved(c)
    for status in (Status.IN_PROGRESS, Status.RESOLVED):
        c.ticket_service.change_status(STAFF, message.ticket_id, StatusChange(status=status))
    assert c.followup_service.run(message) == FollowupOutcome.SENT
    assert kinds(c, message.ticket_id)[0] == "FOLLOWUP_SENT" and len(webhook.posts) == 1
    assert c.followup_service.run(message) == FollowupOutcome.DUPLICATE


def test_a_ticket_answered_while_the_followup_commits_is_not_overwritten(
    c: Container, webhook: FakeWebhook
) -> None:
    message = auto_resolved(c)
    add = c.notifications.add

    def owner_answers_meanwhile(notification: Any) -> None:
        add(notification)
        answer(c, message.ticket_id, ResolutionOutcome.CONFIRMED)

    c.notifications.add = owner_answers_meanwhile  # type: ignore[method-assign]
    assert c.followup_service.run(message) == "answered"
    ticket = c.tickets.get(message.ticket_id)
    assert ticket is not None and ticket.resolution is not None
    assert (
        ticket.resolution.outcome == ResolutionOutcome.CONFIRMED
        and ticket.resolution.followup_sent_at is None
    )
    assert webhook.posts == []


@pytest.mark.parametrize("down", [False, TimeoutError("webhook down")], ids=["refused", "raising"])
def test_a_webhook_that_is_down_loses_nothing_in_app(clock: Clock, down: bool | Exception) -> None:
    webhook = FakeWebhook(down)
    c = build(clock, webhook)
    message = auto_resolved(c)
    assert c.followup_service.run(message) == FollowupOutcome.SENT
    ticket = c.tickets.get(message.ticket_id)
    assert ticket is not None and ticket.resolution is not None and ticket.resolution.followup_sent_at
    assert len(notices(c)) == 1 and len(webhook.posts) == 1
    assert c.followup_service.run(message) == FollowupOutcome.DUPLICATE and len(webhook.posts) == 1


def test_without_a_webhook_the_followup_is_in_app_only(clock: Clock) -> None:
    c = build(clock, None)
    assert c.webhook is None
    assert c.followup_service.run(auto_resolved(c)) == FollowupOutcome.SENT
    assert len(notices(c)) == 1


def test_a_missing_ticket_writes_nothing(c: Container, webhook: FakeWebhook) -> None:
    assert c.followup_service.run(FollowupMessage(ticket_id=999, action_seq=2)) == FollowupOutcome.MISSING
    assert c.tickets.get_with_request(999, "followup-2") == (None, None)
    assert webhook.posts == []


def test_an_early_delivery_is_sent_on_not_acted_on(c: Container, clock: Clock) -> None:
    # the sweeper's clock ahead of this one: harmless, the message comes back when due
    message = auto_resolved(c).model_copy(update={"due_at": clock.now + timedelta(seconds=90.2)})
    assert c.followup_service.run(message) == FollowupOutcome.RESCHEDULED
    [(_, _, delay)] = [s for s in c.queue.sent if s[0] == "followups"]  # type: ignore[attr-defined]
    assert delay == 91
    assert kinds(c, message.ticket_id) == ["AUTO_RESOLVE"] and notices(c) == []


def QueueMessage(body: bytes) -> func.QueueMessage:
    return func.QueueMessage(id="m1", body=body)


class Context:
    invocation_id = "test-invocation"


def test_the_queue_function_runs_the_service_and_refuses_a_malformed_message(
    c: Container, webhook: FakeWebhook
) -> None:
    [function] = [f.get_user_function() for f in REGISTERED if f.get_function_name() == "followups_send"]
    message = auto_resolved(c)
    function(QueueMessage(message.model_dump_json().encode()), Context())
    assert len(webhook.posts) == 1 and kinds(c, message.ticket_id)[0] == "FOLLOWUP_SENT"
    with pytest.raises(ValueError, match="malformed message m1"):
        function(QueueMessage(b'{"ticket_id": "x"}'), Context())
