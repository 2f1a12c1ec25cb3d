"""Resolution feedback on the real Table adapter (and the in-memory one, as a contract): the biggest
answers commit whole, a reopen's two entries commit in one transaction, concurrent answers never
lose or half-apply one, and an answer costs one read and one transaction."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from shared.domain import actions
from shared.domain.analysis import Analysis
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import ActionType, Principal, ResolutionOutcome, Status, TicketCreate
from shared.errors import ConcurrentUpdate
from shared.ports import TicketRepository
from shared.services.feedback import FeedbackService
from shared.services.tickets import TicketService
from shared.storage import names
from shared.storage.clients import StorageClients, round_trips
from shared.storage.keys import TICKET_ROW, ticket_key
from shared.storage.memory import InMemoryNotificationStore, InMemoryTicketRepository
from shared.storage.sizes import TABLE_STRING_UNITS, utf16_units
from tests.integration.test_ticket_repository_contract import table_repo

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
CTRL = "\x01"  # 6 UTF-16 units inside JSON: the worst a character can do
ALICE = Principal(sub="alice")
RESOLVE = Analysis.model_validate(
    {"confidence": 0.95, "recommended_action": "auto_resolve", "reasoning": "kb match"}
)


@pytest.fixture(params=["memory", "table"])
def repo(request: pytest.FixtureRequest) -> TicketRepository:
    if request.param == "memory":
        return InMemoryTicketRepository()
    return table_repo(request.getfixturevalue("azurite_conn"))


def auto_resolved(repo: TicketRepository) -> int:
    created = TicketService(repo, lambda: NOW).create(ALICE, TicketCreate(issue_type="Password reset"))
    ticket = repo.get(created.id)
    assert ticket is not None
    resolved, entry = actions.act(ticket, ActionType.AUTO_RESOLVE, RESOLVE, NOW, {})
    repo.save(resolved, [entry])
    return ticket.id


def service(repo: TicketRepository) -> FeedbackService:
    clock = iter(NOW + timedelta(seconds=i) for i in range(1, 10_000))
    return FeedbackService(repo, InMemoryNotificationStore(), lambda: next(clock))


def test_the_biggest_answers_commit_whole_with_the_reopen_in_the_same_transaction(
    repo: TicketRepository,
) -> None:
    ticket_id = auto_resolved(repo)
    feedback = service(repo)
    no = ResolutionFeedback(resolution_confirmed=False, satisfaction_score=1, feedback_text=CTRL * 2000)
    assert feedback.answer(ALICE, ticket_id, no).ticket_reopened
    yes = ResolutionFeedback(resolution_confirmed=True, satisfaction_score=5, feedback_text=CTRL * 2000)
    assert feedback.answer(ALICE, ticket_id, yes).resolution_confirmed
    ticket = repo.get(ticket_id)
    assert ticket is not None and ticket.status == Status.CLOSED and ticket.version == 5
    r = ticket.resolution
    assert r is not None and r.outcome == ResolutionOutcome.CONFIRMED
    assert r.feedback_text == CTRL * 2000 and r.reopened_reason == CTRL * 2000  # kept whole
    assert r.previous_answer is not None and r.previous_answer.satisfaction_score == 1
    entries = repo.history(ticket_id, 10, None).results
    assert [e.action_type for e in entries] == [
        ActionType.FEEDBACK_RECEIVED,
        ActionType.REOPEN,
        ActionType.FEEDBACK_RECEIVED,
        ActionType.AUTO_RESOLVE,
    ]
    assert entries[0].after_state == ticket.state()


def test_the_biggest_resolution_fits_its_property(azurite_conn: str) -> None:
    repo = table_repo(azurite_conn)
    ticket_id = auto_resolved(repo)
    for confirmed in (False, True, False):
        answer = ResolutionFeedback(resolution_confirmed=confirmed, feedback_text=CTRL * 2000)
        service(repo).answer(ALICE, ticket_id, answer)
    table = StorageClients(azurite_conn).table(names.TICKETS)
    row = table.get_entity(ticket_key(ticket_id), TICKET_ROW)
    # The text and the reopen reason, 6 units a character, and the rest: within the 32K a property holds.
    assert utf16_units(row["Resolution"]) <= TABLE_STRING_UNITS - 4096


def test_concurrent_answers_are_each_recorded_whole_or_refused(repo: TicketRepository) -> None:
    ticket_id = auto_resolved(repo)
    feedback = service(repo)
    start = threading.Barrier(10)

    def submit(i: int) -> str:
        start.wait()
        body = ResolutionFeedback(resolution_confirmed=i % 3 == 0, satisfaction_score=1 + i % 5)
        try:
            feedback.answer(ALICE, ticket_id, body)
        except ConcurrentUpdate:
            return "409"
        return "200"

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(submit, range(10)))
    ticket = repo.get(ticket_id)
    assert ticket is not None
    entries = list(reversed(repo.history(ticket_id, 100, None).results))
    assert [e.seq for e in entries] == list(range(2, ticket.version + 1))  # no gap, no duplicate
    kinds = [e.action_type for e in entries]
    assert kinds.count(ActionType.FEEDBACK_RECEIVED) == results.count("200") >= 1
    for before, after in pairwise(entries):
        assert after.before_state == before.after_state  # each built on the one committed before it
    assert entries[-1].after_state == ticket.state()


def test_an_answer_is_one_read_and_one_transaction_with_the_queue_index_around_it(azurite_conn: str) -> None:
    repo = table_repo(azurite_conn)
    feedback = service(repo)
    for body in (
        ResolutionFeedback(resolution_confirmed=True, satisfaction_score=4),
        ResolutionFeedback(resolution_confirmed=False),  # two entries, still one transaction
    ):
        ticket_id = auto_resolved(repo)
        before = round_trips()
        feedback.answer(ALICE, ticket_id, body)
        # The read, the transaction, and the work-queue entries (before it) and the left ones (after).
        assert round_trips() - before == 4
