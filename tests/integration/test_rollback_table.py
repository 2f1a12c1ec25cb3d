"""The rollback on Table Storage (Azurite): one transaction or nothing, a crash after it completed
by the retry, and concurrent rollbacks of one action in threads of two instances."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from shared.config import Settings
from shared.container import Container
from shared.domain.models import Notification, Principal, ProcessMessage, TicketCreate
from shared.domain.rollback import RollbackRequest
from shared.errors import AppError, RollbackConflict
from shared.ports import RollbackTally
from shared.services.rollback import RollbackService
from shared.storage.memory import InMemoryNotificationStore
from shared.storage.rates import window_limit
from tests.conftest import SECRET
from tests.unit.test_agent_pipeline import ScriptedAgent

ALICE = Principal(sub="alice")
ADA = Principal(sub="ada", roles=frozenset({"admin"}))


class FailsOnce(InMemoryNotificationStore):
    """A notice store whose first write fails: the process 'dies' right after the commit."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def add(self, notification: Notification) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("killed between the commit and the notice")
        super().add(notification)


@pytest.fixture
def azure(azurite_conn: str) -> Iterator[Container]:
    settings = Settings(  # type: ignore[call-arg]
        AzureWebJobsStorage=azurite_conn,
        AUTH_JWT_SECRET=SECRET,
        RATELIMIT_STORAGE_URI="memory://",
        TICKET_CREATE_THROTTLE_RATE="10000/minute",
        ROLLBACK_THROTTLE_RATE="10000/hour",
        MAX_AUTONOMOUS_ACTIONS_PER_HOUR=100000,
        MAX_AUTONOMOUS_ACTIONS_PER_DAY=100000,
    )
    container = Container.for_azure(settings)
    container.analyser = ScriptedAgent()
    container.__post_init__()  # rebuild the services on the scripted analyser
    yield container


def service(c: Container, notices: Any, hook: Any = None) -> RollbackService:
    return RollbackService(
        c.tickets,
        c.rollback_log,
        notices,
        c.telemetry,
        c.clock,
        window_limit(c.settings.rollback_throttle_rate),
        after_rollback=hook or (lambda tally, at: None),
    )


def auto_resolved(c: Container) -> str:
    ticket = c.ticket_service.create(ALICE, TicketCreate(issue_type="Reset password", description="forgot"))
    outcome = c.agent_worker.execute(
        ProcessMessage(ticket_id=ticket.id, request_id=f"r{ticket.id}", requested_by="alice")
    )
    assert outcome == "AUTO_RESOLVE"
    return f"{ticket.id}-2"


def state(c: Container, action_id: str) -> tuple[Any, ...]:
    ticket_id, seq = (int(p) for p in action_id.split("-"))
    ticket, action = c.tickets.get_with_entry(ticket_id, seq)
    assert ticket is not None and action is not None
    kinds = [e.action_type for e in c.tickets.history(ticket_id, 100, None).results]
    return ticket.status, ticket.resolution.outcome, action.rolled_back, kinds  # type: ignore[union-attr]


def test_a_crash_after_the_commit_is_completed_by_the_retry(azure: Container) -> None:
    action_id = auto_resolved(azure)
    notices, calls = FailsOnce(), []

    def hook(tally: RollbackTally, at: datetime) -> None:
        calls.append((tally.recent, at))

    rollbacks = service(azure, notices, hook)
    with pytest.raises(ConnectionError):
        rollbacks.rollback(ADA, action_id, RollbackRequest(reason="bad fix"))
    committed = state(azure, action_id)
    assert committed == ("new", "voided", True, ["ROLLBACK", "AUTO_RESOLVE"])
    assert notices.list("alice", 10, None).results == [] and calls == []

    with pytest.raises(RollbackConflict) as refused:
        rollbacks.rollback(ADA, action_id, RollbackRequest())
    assert refused.value.code == "already_rolled_back"
    [notice] = notices.list("alice", 10, None).results
    ticket_id, seq = (int(p) for p in action_id.split("-"))
    undo = azure.tickets.get_entry(ticket_id, seq + 1)
    assert undo is not None and notice.created_at == undo.executed_at and notice.id == f"rollback-{action_id}"
    assert len(calls) == 1 and calls[0][1] == undo.executed_at
    with pytest.raises(RollbackConflict):  # and again: nothing more is written
        rollbacks.rollback(ADA, action_id, RollbackRequest())
    assert len(notices.list("alice", 10, None).results) == 1 and state(azure, action_id) == committed


def test_concurrent_rollbacks_from_two_instances_commit_once(azure: Container) -> None:
    action_id = auto_resolved(azure)
    notices = InMemoryNotificationStore()
    instances = [service(azure, notices), service(Container.for_azure(azure.settings), notices)]

    def attempt(i: int) -> int:
        try:
            instances[i % 2].rollback(ADA, action_id, RollbackRequest())
            return 200
        except AppError as error:
            return error.status if getattr(error, "code", "") == "already_rolled_back" else -1

    with ThreadPoolExecutor(10) as pool:
        codes = sorted(pool.map(attempt, range(10)))
    assert codes == [200] + [409] * 9
    assert state(azure, action_id) == ("new", "voided", True, ["ROLLBACK", "AUTO_RESOLVE"])
    assert len(notices.list("alice", 10, None).results) == 1
