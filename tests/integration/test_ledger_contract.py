"""One contract for every RequestLedger (the fake and the Table adapter on Azurite), with the
TicketRepository whose `save` commits the COMPLETED record; and the run-once helper on both."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from shared.domain.models import ActionType, RecordStatus, RequestRecord
from shared.errors import ConcurrencyConflict, RequestInProgress
from shared.ports import RequestLedger, TicketRepository
from shared.services.ledger import ClaimOutcome, Once
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.memory import InMemoryTicketRepository
from shared.storage.tables.ledger import TableRequestLedger
from tests.integration.test_ticket_repository_contract import NOW, entry, new_ticket, table_repo, user

Stores = tuple[TicketRepository, RequestLedger]


@pytest.fixture(params=["memory", "table"])
def stores(request: pytest.FixtureRequest) -> Stores:
    if request.param == "memory":
        repo = InMemoryTicketRepository()
        return repo, repo.ledger
    conn = request.getfixturevalue("azurite_conn")
    return table_repo(conn), TableRequestLedger(StorageClients(conn).table(names.TICKETS))


def claim(request_id: str) -> RequestRecord:
    return RequestRecord(request_id=request_id, status="INPROGRESS", expires_at=NOW + timedelta(minutes=5))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_a_request_is_claimed_by_one_worker_and_completed_with_the_change(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    claim = RequestRecord(request_id="abc123", status="INPROGRESS", expires_at=NOW)
    assert repo.get_with_request(ticket.id, "abc123") == (ticket, None)
    ledger.claim(ticket.id, claim, None)
    with pytest.raises(ConcurrencyConflict):
        ledger.claim(ticket.id, claim, None)
    _, held = repo.get_with_request(ticket.id, "abc123")
    assert held is not None and held.status == "INPROGRESS" and held.etag
    done = RequestRecord.model_validate(
        {**claim.model_dump(), "status": "COMPLETED", "action_type": "ESCALATE"}
    )
    repo.save(ticket.model_copy(update={"version": 2}), [entry(ticket, 2)], request=done)
    again, record = repo.get_with_request(ticket.id, "abc123")
    assert again.version == 2 and record.status == "COMPLETED"  # type: ignore[union-attr]
    with pytest.raises(ConcurrencyConflict):  # the expired copy we hold is no longer current
        ledger.claim(ticket.id, claim, held)


def test_an_expired_claim_is_taken_over_once_and_a_released_one_is_free(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    claim = RequestRecord(request_id="r1", status="INPROGRESS", expires_at=NOW)
    first = ledger.claim(ticket.id, claim, None)
    _, expired = repo.get_with_request(ticket.id, "r1")
    assert expired is not None and expired.etag == first
    winners = []
    for _ in range(2):
        try:
            winners.append(ledger.claim(ticket.id, claim, expired))
        except ConcurrencyConflict:
            pass
    assert len(winners) == 1
    ledger.release(ticket.id, "r1", first)  # no longer ours: left alone
    assert repo.get_with_request(ticket.id, "r1")[1] is not None
    ledger.release(ticket.id, "r1", winners[0])
    ledger.release(ticket.id, "r1", winners[0])  # idempotent
    assert repo.get_with_request(ticket.id, "r1")[1] is None
    ledger.claim(ticket.id, claim, None)


def test_our_claim_completes_without_a_change_and_a_stale_etag_cannot(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    etag = ledger.claim(ticket.id, claim("r1"), None)
    done = RequestRecord(request_id="r1", status="COMPLETED", outcome="superseded")
    ledger.complete(ticket.id, done, etag)
    current, record = repo.get_with_request(ticket.id, "r1")
    assert record is not None and record.status == "COMPLETED" and record.outcome == "superseded"
    assert current is not None and current.version == 1  # the ticket itself is untouched
    with pytest.raises(ConcurrencyConflict):
        ledger.complete(ticket.id, done, etag)  # completed already: no longer our claim


def test_a_claim_taken_over_cannot_be_completed_by_its_old_holder(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    old = ledger.claim(ticket.id, claim("r2"), None)
    _, held = repo.get_with_request(ticket.id, "r2")
    ledger.claim(ticket.id, claim("r2"), held)
    with pytest.raises(ConcurrencyConflict):
        ledger.complete(ticket.id, RequestRecord(request_id="r2", status="COMPLETED"), old)


def test_the_ledger_reads_what_the_ticket_transaction_committed_and_nothing_of_a_lost_one(
    stores: Stores,
) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    assert ledger.get(ticket.id, "r3") is None
    etag = ledger.claim(ticket.id, claim("r3"), None)
    held = ledger.get(ticket.id, "r3")
    assert held is not None and held.status == RecordStatus.INPROGRESS and held.etag == etag
    assert held.expires_at == NOW + timedelta(minutes=5)
    done = Once.completed("r3", ActionType.ESCALATE, 2, "ESCALATE")
    repo.save(ticket.model_copy(update={"version": 2}), [entry(ticket, 2)], request=done)
    lost = Once.completed("r3", ActionType.AUTO_RESOLVE, 2, "AUTO_RESOLVE")
    with pytest.raises(ConcurrencyConflict):  # version 2 is taken: neither the change nor its record lands
        repo.save(ticket.model_copy(update={"version": 2}), [entry(ticket, 2)], request=lost)
    record = ledger.get(ticket.id, "r3")
    assert record is not None and record.status == RecordStatus.COMPLETED
    assert (record.action_type, record.ticket_version, record.outcome) == (ActionType.ESCALATE, 2, "ESCALATE")
    ledger.release(ticket.id, "r3", etag)  # our claim became COMPLETED: releasing it does nothing
    assert ledger.get(ticket.id, "r3") == record


def test_the_records_of_one_request_id_on_two_tickets_are_apart(stores: Stores) -> None:
    repo, ledger = stores
    first, second = new_ticket(repo, user()), new_ticket(repo, user())
    ledger.claim(first.id, claim("same"), None)
    ledger.claim(second.id, claim("same"), None)  # no conflict: another scope
    assert ledger.get(first.id, "same") is not None and ledger.get(second.id, "same") is not None


# The run-once helper on each ledger.


def test_once_claims_then_tells_a_redelivery_to_wait_until_the_live_claim_expires(stores: Stores) -> None:
    repo, ledger = stores
    ticket, clock = new_ticket(repo, user()), Clock()
    once = Once(ledger, clock, claim_seconds=90)
    ours = once.claim(ticket.id, "w1")
    assert ours.outcome == ClaimOutcome.CLAIMED and ours.etag
    clock.now += timedelta(seconds=29.5)
    again = once.claim(ticket.id, "w1")
    assert again.outcome == ClaimOutcome.WAIT and again.wait_seconds == 62  # ceil(60.5) + 1
    clock.now += timedelta(seconds=61)
    taken = once.claim(ticket.id, "w1")  # expired: taken over, and the old holder's ETag is dead
    assert taken.outcome == ClaimOutcome.CLAIMED and taken.etag != ours.etag
    assert not once.complete_unchanged(ticket.id, "w1", ours.etag, "superseded")
    once.release(ticket.id, "w1", ours.etag)
    assert ledger.get(ticket.id, "w1").etag == taken.etag  # type: ignore[union-attr]
    assert once.complete_unchanged(ticket.id, "w1", taken.etag, "superseded")
    duplicate = once.claim(ticket.id, "w1")
    assert duplicate.outcome == ClaimOutcome.DUPLICATE and duplicate.record is not None
    assert duplicate.record.outcome == "superseded" and duplicate.record.ticket_version is None


def test_once_reports_a_completed_request_with_the_result_its_transaction_recorded(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    once = Once(ledger, Clock(), claim_seconds=90)
    assert once.claim(ticket.id, "w2").outcome == ClaimOutcome.CLAIMED
    done = Once.completed("w2", ActionType.AUTO_RESOLVE, 2, "AUTO_RESOLVE")
    repo.save(ticket.model_copy(update={"version": 2}), [entry(ticket, 2)], request=done)
    duplicate = once.claim(ticket.id, "w2")
    assert duplicate.outcome == ClaimOutcome.DUPLICATE and duplicate.record is not None
    assert (duplicate.record.action_type, duplicate.record.ticket_version) == (ActionType.AUTO_RESOLVE, 2)


def test_once_released_claim_is_free_for_the_retry(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    once = Once(ledger, Clock(), claim_seconds=90)
    first = once.claim(ticket.id, "w3")
    once.release(ticket.id, "w3", first.etag)
    assert ledger.get(ticket.id, "w3") is None
    assert once.claim(ticket.id, "w3").outcome == ClaimOutcome.CLAIMED


def test_of_many_concurrent_deliveries_exactly_one_claims_and_the_rest_wait(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())
    once = Once(ledger, Clock(), claim_seconds=90)
    start = threading.Barrier(8)

    def deliver(_: int) -> ClaimOutcome:
        start.wait()
        return once.claim(ticket.id, "w4").outcome

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(deliver, range(8)))
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1 and outcomes.count(ClaimOutcome.WAIT) == 7


def test_of_many_workers_taking_over_one_expired_claim_exactly_one_wins(stores: Stores) -> None:
    repo, ledger = stores
    ticket, clock = new_ticket(repo, user()), Clock()
    once = Once(ledger, clock, claim_seconds=90)
    once.claim(ticket.id, "w5")  # a worker that dies
    clock.now += timedelta(seconds=91)
    start = threading.Barrier(8)

    def deliver(_: int) -> str:
        start.wait()
        try:
            return once.claim(ticket.id, "w5").outcome
        except RequestInProgress:
            return "retried by the host"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(deliver, range(8)))
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1, outcomes
    assert set(outcomes) <= {ClaimOutcome.CLAIMED, ClaimOutcome.WAIT, "retried by the host"}


def test_a_claim_released_between_the_insert_and_the_read_makes_the_host_retry(stores: Stores) -> None:
    repo, ledger = stores
    ticket = new_ticket(repo, user())

    class ReleasedMeanwhile:
        """The other worker releases its claim just after ours failed to insert."""

        def __getattr__(self, name: str) -> object:
            return getattr(ledger, name)

        def get(self, scope: int, request_id: str) -> RequestRecord | None:
            held = ledger.get(scope, request_id)
            assert held is not None and held.etag is not None
            ledger.release(scope, request_id, held.etag)
            return ledger.get(scope, request_id)

    ledger.claim(ticket.id, claim("w6"), None)
    with pytest.raises(RequestInProgress):
        Once(ReleasedMeanwhile(), Clock(), claim_seconds=90).claim(ticket.id, "w6")  # type: ignore[arg-type]
