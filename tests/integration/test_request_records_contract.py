"""Request records that close without a change: the fake and the Table adapter alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.models import RequestRecord
from shared.errors import ConcurrencyConflict
from shared.ports import TicketRepository
from tests.integration.test_ticket_repository_contract import NOW, new_ticket, repo, user

__all__ = ["repo"]  # the fixture, run on the fake and on Azurite


def claim(request_id: str) -> RequestRecord:
    return RequestRecord(request_id=request_id, status="INPROGRESS", expires_at=NOW + timedelta(minutes=5))


def test_our_claim_completes_without_a_change_and_a_stale_etag_cannot(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    etag = repo.claim_request(ticket.id, claim("r1"), None)
    done = RequestRecord(request_id="r1", status="COMPLETED", outcome="superseded")
    repo.complete_request(ticket.id, done, etag)
    current, record = repo.get_with_request(ticket.id, "r1")
    assert record is not None and record.status == "COMPLETED" and record.outcome == "superseded"
    assert current is not None and current.version == 1  # the ticket itself is untouched
    with pytest.raises(ConcurrencyConflict):
        repo.complete_request(ticket.id, done, etag)  # completed already: no longer our claim


def test_a_claim_taken_over_cannot_be_completed_by_its_old_holder(repo: TicketRepository) -> None:
    ticket = new_ticket(repo, user())
    old = repo.claim_request(ticket.id, claim("r2"), None)
    _, held = repo.get_with_request(ticket.id, "r2")
    repo.claim_request(ticket.id, claim("r2"), held)
    with pytest.raises(ConcurrencyConflict):
        repo.complete_request(ticket.id, RequestRecord(request_id="r2", status="COMPLETED"), old)
