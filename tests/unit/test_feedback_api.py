"""`POST /tickets/{id}/resolution-feedback/` through the real function adapter, on in-memory storage.

Tickets are auto-resolved by the real pipeline (process request, then the worker on its message,
with the embedded agent), so the resolution answered is the one the agent writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.container import Container
from shared.domain.models import (
    ActionType,
    HistoryEntry,
    Notification,
    ProcessMessage,
    RequestRecord,
    ResolutionOutcome,
    Status,
    Ticket,
)
from shared.errors import ConcurrencyConflict
from shared.storage.memory import InMemoryNotificationStore
from shared.storage.names import AGENT_QUEUE
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

ALICE, BOB, STAFF = bearer("alice"), bearer("bob"), bearer("sam", "staff")
JSON = {"Content-Type": "application/json"}
RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}


def auto_resolved(c: Container, headers: dict[str, str] = ALICE) -> int:
    created = invoke("tickets_create", "POST", json_body=RESET, headers=headers)
    ticket_id = payload(created)["id"]
    assert invoke("agent_process", "POST", headers=headers, route={"id": str(ticket_id)}).status_code == 202
    c.agent_worker.execute(ProcessMessage.model_validate(c.queue.messages(AGENT_QUEUE)[-1]))  # type: ignore[attr-defined]
    ticket = c.tickets.get(ticket_id)
    assert ticket is not None and ticket.status == "resolved" and ticket.resolution is not None
    return ticket_id


def new_ticket() -> int:
    return int(payload(invoke("tickets_create", "POST", json_body=RESET, headers=ALICE))["id"])


PROBLEM = {"Accept": "application/problem+json"}  # errors as problem+json (the default is plain JSON)


def answer(
    ticket_id: int, body: Any = None, headers: dict[str, str] = ALICE, raw: bytes | None = None
) -> Any:
    if raw is None:
        return invoke(
            "tickets_resolution_feedback",
            "POST",
            json_body=body,
            headers=headers | PROBLEM,
            route={"id": str(ticket_id)},
        )
    return invoke(
        "tickets_resolution_feedback",
        "POST",
        body=raw,
        headers=headers | JSON | PROBLEM,
        route={"id": str(ticket_id)},
    )


def history(c: Container, ticket_id: int) -> list[HistoryEntry]:
    return list(reversed(c.tickets.history(ticket_id, 100, None).results))  # oldest first


def kinds(c: Container, ticket_id: int) -> list[str]:
    return [e.action_type.value for e in history(c, ticket_id)]


def staff_notices(c: Container) -> list[Notification]:
    return c.notifications.list(None, 100, None).results


def snapshot(c: Container, ticket_id: int) -> tuple[Ticket | None, list[HistoryEntry]]:
    return c.tickets.get(ticket_id), history(c, ticket_id)


def test_yes_with_five_stars_confirms_and_closes_the_ticket(container: Container) -> None:
    ticket_id = auto_resolved(container)
    response = answer(ticket_id, {"resolution_confirmed": True, "satisfaction_score": 5, "feedback_text": ""})
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = payload(response)
    assert body == {
        "message": body["message"],
        "ticket_id": ticket_id,
        "resolution_confirmed": True,
        "ticket_reopened": False,
    }
    shown = payload(invoke("tickets_get", headers=ALICE, route={"id": str(ticket_id)}))
    assert shown["status"] == "closed"
    resolution = shown["resolution"]
    assert resolution["outcome"] == "confirmed" and resolution["resolution_confirmed"] is True
    assert resolution["satisfaction_score"] == 5 and resolution["response_received_at"]
    assert resolution["reopened"] is False
    assert kinds(container, ticket_id) == ["AUTO_RESOLVE", "FEEDBACK_RECEIVED"]
    assert history(container, ticket_id)[-1].executed_by == "alice"
    assert staff_notices(container) == []


def test_no_with_the_web_clients_zero_stars_reopens_and_escalates_at_high_priority(
    container: Container,
) -> None:
    auto_resolved(container)  # another ticket, answered yes, is not touched
    ticket_id = auto_resolved(container)
    response = answer(
        ticket_id, {"resolution_confirmed": False, "satisfaction_score": 0, "feedback_text": "still broken"}
    )
    assert response.status_code == 200
    assert payload(response)["ticket_reopened"] is True and payload(response)["resolution_confirmed"] is False
    shown = payload(invoke("tickets_get", headers=ALICE, route={"id": str(ticket_id)}))
    assert shown["status"] == "escalated" and shown["priority"] == "high"
    resolution = shown["resolution"]
    assert resolution["outcome"] == "failed" and resolution["satisfaction_score"] is None
    assert resolution["reopened"] is True and resolution["reopened_at"]
    assert resolution["reopened_reason"] == "still broken" and resolution["feedback_text"] == "still broken"
    assert kinds(container, ticket_id) == ["AUTO_RESOLVE", "FEEDBACK_RECEIVED", "REOPEN"]
    [notice] = staff_notices(container)
    assert notice.kind == "reopened" and notice.ticket_id == ticket_id and notice.user is None
    assert notice.id == f"reopen-{ticket_id}-{history(container, ticket_id)[-1].seq}"
    assert container.notifications.list("alice", 10, None).results == []  # to staff, not the owner


@pytest.mark.parametrize(
    ("raw", "headers", "status", "loc"),
    [
        (b'{"resolution_confirmed": true, "satisfaction_score": 7}', ALICE, 400, "satisfaction_score"),
        (b'{"resolution_confirmed": true, "satisfaction_score": "five"}', ALICE, 400, "satisfaction_score"),
        (b'{"satisfaction_score": 5}', ALICE, 400, "resolution_confirmed"),
        (
            b'{"resolution_confirmed": false, "feedback_text": "' + b"x" * 5120 + b'"}',
            ALICE,
            400,
            "feedback_text",
        ),
        (b'{"resolution_confirmed": true, "stars": 5}', ALICE, 400, "stars"),
        (b'{"resolution_confirmed": "true"}', ALICE, 400, "resolution_confirmed"),
        (b'{"resolution_confirmed": true, "satisfaction_score": 4.5}', ALICE, 400, "satisfaction_score"),
        (b'{"resolution_confirmed": true', ALICE, 400, None),
        (b'{"resolution_confirmed": false}', BOB, 404, None),
    ],
    ids=[
        "score7",
        "five",
        "missing",
        "5kb",
        "unknown",
        "string_bool",
        "half_star",
        "malformed",
        "other_user",
    ],
)
def test_bad_feedback_is_refused_and_changes_nothing(
    raw: bytes, headers: dict[str, str], status: int, loc: str | None, container: Container
) -> None:
    ticket_id = auto_resolved(container)
    before = snapshot(container, ticket_id)
    response = answer(ticket_id, headers=headers, raw=raw)
    assert response.status_code == status, response.get_body()
    problem = payload(response)
    assert (
        response.mimetype == "application/problem+json" and problem["status"] == status and problem["detail"]
    )
    if loc:
        assert [e["loc"] for e in problem["errors"]] == [loc]
    assert snapshot(container, ticket_id) == before
    assert staff_notices(container) == []


def test_another_users_ticket_is_404_like_a_missing_one(container: Container) -> None:
    ticket_id = auto_resolved(container)
    hidden = payload(answer(ticket_id, {"resolution_confirmed": True}, headers=BOB))
    missing = payload(answer(999_999, {"resolution_confirmed": True}, headers=BOB))
    assert hidden["code"] == missing["code"] == "not_found"
    assert hidden["detail"].replace(str(ticket_id), "X") == missing["detail"].replace("999999", "X")


def test_a_ticket_without_a_resolution_is_409_no_resolution(container: Container) -> None:
    ticket_id = new_ticket()
    before = snapshot(container, ticket_id)
    response = answer(ticket_id, {"resolution_confirmed": True, "satisfaction_score": 0, "feedback_text": ""})
    assert response.status_code == 409 and payload(response)["code"] == "no_resolution"
    assert payload(response)["detail"]
    assert snapshot(container, ticket_id) == before


def test_a_voided_resolution_is_409_no_resolution(container: Container) -> None:
    ticket_id = auto_resolved(container)
    ticket = container.tickets.get(ticket_id)
    assert ticket is not None and ticket.resolution is not None
    voided = ticket.resolution.model_copy(update={"outcome": ResolutionOutcome.VOIDED})
    rolled, entry = ticket.advance(  # what a rollback leaves (its own change, by an admin)
        ActionType.ROLLBACK, "ada", ticket.updated_at, {"status": Status.NEW, "resolution": voided}
    )
    container.tickets.save(rolled, [entry])
    before = snapshot(container, ticket_id)
    for body in ({"resolution_confirmed": True}, {"resolution_confirmed": False, "feedback_text": "x"}):
        response = answer(ticket_id, body)
        assert response.status_code == 409 and payload(response)["code"] == "no_resolution"
    assert snapshot(container, ticket_id) == before


def test_ten_resubmissions_leave_one_current_answer_and_ten_entries(container: Container) -> None:
    ticket_id = auto_resolved(container)
    for i in range(10):
        body = {"resolution_confirmed": False, "satisfaction_score": 1 + i % 5, "feedback_text": f"try {i}"}
        assert answer(ticket_id, body).status_code == 200
    entries = kinds(container, ticket_id)
    assert entries.count("FEEDBACK_RECEIVED") == 10 and entries.count("REOPEN") == 1  # reopened once
    ticket = container.tickets.get(ticket_id)
    assert ticket is not None and ticket.resolution is not None
    assert ticket.resolution.feedback_text == "try 9" and ticket.resolution.satisfaction_score == 5
    assert ticket.resolution.previous_answer is not None
    assert ticket.resolution.previous_answer.satisfaction_score == 4  # the one it replaced
    assert ticket.version == 1 + len(entries)
    assert len(staff_notices(container)) == 1  # the same notice, written again, is one notice


def test_answers_alternating_yes_and_no_close_and_reopen_each_time(container: Container) -> None:
    ticket_id = auto_resolved(container)
    for i in range(4):
        confirmed = i % 2 == 1
        body = payload(answer(ticket_id, {"resolution_confirmed": confirmed}, headers=STAFF if i else ALICE))
        assert body["resolution_confirmed"] is confirmed and body["ticket_reopened"] is not confirmed
        shown = payload(invoke("tickets_get", headers=ALICE, route={"id": str(ticket_id)}))
        assert shown["status"] == ("closed" if confirmed else "escalated")
    assert kinds(container, ticket_id) == [
        "AUTO_RESOLVE",
        *["FEEDBACK_RECEIVED", "REOPEN", "FEEDBACK_RECEIVED"] * 2,
    ]
    assert len(staff_notices(container)) == 2  # one per reopen


def test_staff_may_answer_for_the_owner(container: Container) -> None:
    ticket_id = auto_resolved(container)
    response = answer(ticket_id, {"resolution_confirmed": True, "satisfaction_score": 4}, headers=STAFF)
    assert response.status_code == 200 and payload(response)["resolution_confirmed"] is True
    assert history(container, ticket_id)[-1].executed_by == "sam"


def test_anonymous_is_401_before_the_body_is_read(container: Container) -> None:
    ticket_id = auto_resolved(container)
    before = snapshot(container, ticket_id)
    response = answer(ticket_id, headers={}, raw=b'{"resolution_confirmed": 1}')
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(container, ticket_id) == before


class SlowReads:
    """The repository with a pause after each read, so that concurrent answers all decide on the
    same version and race to commit it; counts the races lost."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, ticket_id: int) -> Ticket | None:
        ticket = self.inner.get(ticket_id)
        time.sleep(0.005)
        return ticket

    def save(self, ticket: Ticket, entries: Sequence[HistoryEntry], *args: Any, **hooks: Any) -> None:
        try:
            self.inner.save(ticket, entries, *args, **hooks)
        except ConcurrencyConflict:
            self.lost += 1
            raise


def test_ten_concurrent_answers_are_each_recorded_or_409_and_the_versions_add_up(
    container: Container,
) -> None:
    ticket_id = auto_resolved(container)
    slow = SlowReads(container.tickets)
    container.feedback_service.tickets = slow  # type: ignore[assignment]
    start = threading.Barrier(10)

    def submit(i: int) -> Any:
        start.wait()
        return answer(ticket_id, {"resolution_confirmed": i % 2 == 0, "satisfaction_score": 1 + i % 5})

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(submit, range(10)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    assert all(payload(r)["code"] == "concurrent_update" for r in responses if r.status_code == 409)
    assert slow.lost >= 9  # they did race: all but one lost the first round
    entries = kinds(container, ticket_id)
    assert entries.count("FEEDBACK_RECEIVED") == statuses.count(200) >= 1
    ticket = container.tickets.get(ticket_id)
    assert ticket is not None and ticket.version == 1 + len(entries)
    assert [e.seq for e in history(container, ticket_id)] == list(range(2, ticket.version + 1))
    # Each reopen is a REOPEN entry right after a "no" that found the ticket closed or resolved.
    reopens = [i for i, kind in enumerate(entries) if kind == "REOPEN"]
    assert all(entries[i - 1] == "FEEDBACK_RECEIVED" for i in reopens)


class LosingRepository:
    """Every save loses the race, as when other writers keep committing first."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.saves = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save(
        self,
        ticket: Ticket,
        entries: Sequence[HistoryEntry],
        request: RequestRecord | None = None,
        updated: Sequence[HistoryEntry] = (),
        **hooks: Any,
    ) -> None:
        self.saves += 1
        raise ConcurrencyConflict("another writer committed first")


def test_a_race_lost_on_every_attempt_is_409_concurrent_update_after_bounded_retries(
    container: Container,
) -> None:
    ticket_id = auto_resolved(container)
    before = snapshot(container, ticket_id)
    losing = LosingRepository(container.tickets)
    service = container.feedback_service
    service.tickets, pauses = losing, []  # type: ignore[assignment]
    service.pause = pauses.append
    response = answer(ticket_id, {"resolution_confirmed": False})
    assert response.status_code == 409 and payload(response)["code"] == "concurrent_update"
    assert losing.saves == len(pauses) == 8 and max(pauses) <= 0.005 * 2**7
    assert snapshot(container, ticket_id) == before and staff_notices(container) == []


class DownNotificationStore(InMemoryNotificationStore):
    """A notice store that is down until `up` is set."""

    up = False

    def add(self, notification: Notification) -> None:
        if not self.up:
            raise OSError("notification storage unreachable")
        super().add(notification)


def test_a_notice_store_outage_keeps_the_answer_and_the_next_no_writes_the_lost_notice(
    container: Container,
) -> None:
    ticket_id = auto_resolved(container)
    store = DownNotificationStore()
    container.feedback_service.notifications = store
    response = answer(ticket_id, {"resolution_confirmed": False, "feedback_text": "broken"})
    assert response.status_code == 200 and payload(response)["ticket_reopened"] is True
    assert kinds(container, ticket_id) == ["AUTO_RESOLVE", "FEEDBACK_RECEIVED", "REOPEN"]
    assert store.list(None, 10, None).results == []
    store.up = True
    assert answer(ticket_id, {"resolution_confirmed": False, "feedback_text": "still"}).status_code == 200
    [notice] = store.list(None, 10, None).results
    reopen = history(container, ticket_id)[2]
    assert notice.id == f"reopen-{ticket_id}-{reopen.seq}" and notice.created_at == reopen.executed_at
