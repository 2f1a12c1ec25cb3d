"""One-click answers on the real Table adapter (and the in-memory one, as a contract): a link is
taken once even by concurrent uses, its ledger record commits with the answer, a refused link
reads nothing, and an answer through a link costs one read more than the API's (the history
read that tells whether the link's resolution still stands)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import actions
from shared.domain.analysis import Analysis
from shared.domain.links import verify
from shared.domain.models import ActionType, Principal, RecordStatus, Status, TicketCreate
from shared.errors import AppError
from shared.ports import TicketRepository
from shared.services.feedback import FeedbackService
from shared.services.links import LinkService, LinkSettings, LinkUsed, answer_links
from shared.services.tickets import TicketService
from shared.storage.clients import round_trips
from shared.storage.memory import InMemoryNotificationStore, InMemoryTicketRepository
from tests.integration.test_ticket_repository_contract import table_repo

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
ALICE = Principal(sub="alice")
RESOLVE = Analysis.model_validate(
    {"confidence": 0.95, "recommended_action": "auto_resolve", "reasoning": "kb match"}
)
SETTINGS = LinkSettings((b"integration-K3y-5d8f1a7c2e9b4d6f0a3c8e1b",), "https://help.example.com", 7 * 86400)


@pytest.fixture(params=["memory", "table"])
def repo(request: pytest.FixtureRequest) -> TicketRepository:
    if request.param == "memory":
        return InMemoryTicketRepository()
    return table_repo(request.getfixturevalue("azurite_conn"))


def service(repo: TicketRepository) -> LinkService:
    clock = iter(NOW + timedelta(seconds=i) for i in range(1, 10_000))
    lock = threading.Lock()

    def now() -> datetime:
        with lock:
            return next(clock)

    return LinkService(repo, FeedbackService(repo, InMemoryNotificationStore(), now), now, SETTINGS)


def resolved_with_links(repo: TicketRepository) -> tuple[int, dict[str, str]]:
    created = TicketService(repo, lambda: NOW).create(ALICE, TicketCreate(issue_type="Password reset"))
    ticket = repo.get(created.id)
    assert ticket is not None
    resolved, entry = actions.act(ticket, ActionType.AUTO_RESOLVE, RESOLVE, NOW, {})
    repo.save(resolved, [entry])
    urls = answer_links(SETTINGS, resolved, resolved.version, NOW)
    return ticket.id, {name: url.rsplit("/", 2)[-2] for name, url in urls.items() if name in ("yes", "no")}


def test_concurrent_uses_of_one_link_record_one_answer_with_its_ledger_record(repo: TicketRepository) -> None:
    ticket_id, tokens = resolved_with_links(repo)
    links = service(repo)
    start = threading.Barrier(8)

    def use(_: int) -> str:
        start.wait()
        try:
            links.answer(tokens["no"], None, "still broken")
            return "recorded"
        except LinkUsed:
            return "used"
        except AppError as error:
            return error.code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(use, range(8)))
    assert results.count("recorded") == 1 and set(results) <= {"recorded", "used", "concurrent_update"}
    ticket = repo.get(ticket_id)
    assert ticket is not None and ticket.status == Status.ESCALATED
    assert ticket.version == 4  # AUTO_RESOLVE, then one FEEDBACK_RECEIVED and its REOPEN
    _, record = repo.get_with_request(ticket_id, verify(tokens["no"], SETTINGS.keys, NOW).once_key)
    assert record is not None and record.status == RecordStatus.COMPLETED and record.ticket_version == 4
    with pytest.raises(LinkUsed):
        links.answer(tokens["no"], None, "")
    assert links.answer(tokens["yes"], 5, "").resolution_confirmed  # the other link is its own


def test_an_answer_through_a_link_costs_five_round_trips_and_a_refused_one_none(
    repo: TicketRepository,
) -> None:
    ticket_id, tokens = resolved_with_links(repo)
    links = service(repo)
    before = round_trips()
    assert links.answer(tokens["yes"], 4, "").resolution_confirmed
    table = not isinstance(repo, InMemoryTicketRepository)
    # ticket+record, history, transaction, and the work-queue entries before and the left ones after it
    assert round_trips() - before == (5 if table else 0)
    before = round_trips()
    with pytest.raises(AppError) as refused:
        links.answer(tokens["yes"][:-1] + ("A" if tokens["yes"][-1] != "A" else "B"), None, "")
    assert refused.value.status == 400 and round_trips() == before
    ticket = repo.get(ticket_id)
    assert ticket is not None and ticket.status == Status.CLOSED
