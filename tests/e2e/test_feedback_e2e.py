"""Resolution feedback end to end: auto-resolved by the agent on the local host, answered over HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from shared.domain.models import ActionType, ResolutionOutcome, Status
from shared.storage import names
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.notifications import TableNotificationStore
from shared.storage.tables.tickets import TableTicketRepository
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until

ALICE, BOB, STAFF = bearer("alice"), bearer("bob"), bearer("sam", "staff")
RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}


def resolved_tickets(api: httpx.Client, count: int) -> list[int]:
    ids = [create_ticket(api, "alice", **RESET)["id"] for _ in range(count)]
    for ticket_id in ids:
        assert api.post(f"/tickets/{ticket_id}/process/", headers=ALICE).status_code == 202
    wait_until(lambda: all(get(api, i)["status"] == "resolved" for i in ids), timeout=30)
    return ids


def get(api: httpx.Client, ticket_id: int) -> dict[str, Any]:
    response = api.get(f"/tickets/{ticket_id}/", headers=STAFF)
    assert response.status_code == 200
    return dict(response.json())


def history(api: httpx.Client, ticket_id: int) -> dict[str, Any]:
    response = api.get(f"/tickets/{ticket_id}/action-history/", headers=STAFF, params={"limit": 100})
    assert response.status_code == 200
    return dict(response.json())


def kinds(api: httpx.Client, ticket_id: int) -> list[str]:
    return [e["action_type"] for e in reversed(history(api, ticket_id)["action_history"])]


def feedback(api: httpx.Client, ticket_id: int, body: Any, headers: dict[str, str] = ALICE) -> httpx.Response:
    return api.post(f"/tickets/{ticket_id}/resolution-feedback/", json=body, headers=headers)


def test_yes_closes_no_reopens_and_bad_answers_change_nothing(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        fixed, broken, spare = resolved_tickets(api, 3)

        yes = feedback(
            api, fixed, {"resolution_confirmed": True, "satisfaction_score": 5, "feedback_text": ""}
        )
        assert yes.status_code == 200 and yes.headers["content-type"].startswith("application/json")
        assert yes.json() == {
            "message": yes.json()["message"],
            "ticket_id": fixed,
            "resolution_confirmed": True,
            "ticket_reopened": False,
        }
        closed = get(api, fixed)
        assert closed["status"] == "closed" and closed["resolution"]["outcome"] == "confirmed"
        assert closed["resolution"]["satisfaction_score"] == 5

        no = feedback(
            api,
            broken,
            {"resolution_confirmed": False, "satisfaction_score": 0, "feedback_text": "still broken"},
        )
        assert no.status_code == 200 and no.json()["ticket_reopened"] is True
        reopened = get(api, broken)
        assert reopened["status"] == "escalated" and reopened["priority"] == "high"
        resolution = reopened["resolution"]
        assert resolution["outcome"] == "failed" and resolution["satisfaction_score"] is None
        assert resolution["reopened"] is True and resolution["reopened_reason"] == "still broken"
        assert kinds(api, broken) == ["AUTO_RESOLVE", "FEEDBACK_RECEIVED", "REOPEN"]
        notices = TableNotificationStore(stack.storage.table(names.NOTIFICATIONS))
        [notice] = notices.list(None, 10, None).results  # to staff, stored in the notifications table
        assert notice.kind == "reopened" and notice.ticket_id == broken and notice.id == f"reopen-{broken}-4"
        assert notices.list("alice", 10, None).results == []
        assert get(api, fixed) == closed  # one ticket's answer leaves the others alone

        before = (get(api, spare), history(api, spare))
        refused = [
            (b'{"resolution_confirmed": true, "satisfaction_score": 7}', ALICE, 400),
            (b'{"resolution_confirmed": true, "satisfaction_score": "five"}', ALICE, 400),
            (b'{"satisfaction_score": 5, "feedback_text": "ok"}', ALICE, 400),
            (b'{"resolution_confirmed": false, "feedback_text": "' + b"x" * 5120 + b'"}', ALICE, 400),
            (b'{"resolution_confirmed": true, "rating": 5}', ALICE, 400),
            (b'{"resolution_confirmed": false}', BOB, 404),
            (b'{"resolution_confirmed": false}', {}, 401),
        ]
        for raw, headers, status in refused:
            response = api.post(
                f"/tickets/{spare}/resolution-feedback/",
                content=raw,
                headers={"Content-Type": "application/json", "Accept": "application/problem+json", **headers},
            )
            assert response.status_code == status, (raw[:60], response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"]
        assert (get(api, spare), history(api, spare)) == before

        staff = feedback(api, spare, {"resolution_confirmed": True, "satisfaction_score": 4}, headers=STAFF)
        assert staff.status_code == 200
        answered = history(api, spare)["action_history"][0]  # newest first
        assert answered["action_type"] == "FEEDBACK_RECEIVED" and answered["executed_by"] == "sam"


def test_no_resolution_and_a_voided_one_are_409(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        fresh = create_ticket(api, "alice", **RESET)["id"]
        response = feedback(
            api, fresh, {"resolution_confirmed": True, "satisfaction_score": 0, "feedback_text": ""}
        )
        assert response.status_code == 409 and response.json()["code"] == "no_resolution"
        assert response.json()["detail"]

        [voided] = resolved_tickets(api, 1)
        # What a rollback leaves, written as the rollback will write it: its own version step.
        tables = stack.storage
        repo = TableTicketRepository(
            tables.table(names.TICKETS),
            tables.table(names.TICKET_OWNERS),
            TableIdAllocator(tables.table(names.COUNTERS)),
        )
        ticket = repo.get(voided)
        assert ticket is not None and ticket.resolution is not None
        void = ticket.resolution.model_copy(update={"outcome": ResolutionOutcome.VOIDED})
        rolled, entry = ticket.advance(
            ActionType.ROLLBACK, "ada", ticket.updated_at, {"status": Status.NEW, "resolution": void}
        )
        repo.save(rolled, [entry])
        before = (get(api, voided), history(api, voided))
        for body in ({"resolution_confirmed": True}, {"resolution_confirmed": False, "feedback_text": "x"}):
            response = feedback(api, voided, body)
            assert response.status_code == 409 and response.json()["code"] == "no_resolution"
        assert (get(api, voided), history(api, voided)) == before


def test_resubmissions_and_concurrent_answers_each_add_one_entry(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        again, raced = resolved_tickets(api, 2)
        for i in range(10):  # the web client double-submits: each is an explicit replacement
            body = {"resolution_confirmed": i % 2 == 0, "satisfaction_score": i % 6, "feedback_text": f"n{i}"}
            assert feedback(api, again, body).status_code == 200
        entries = kinds(api, again)
        assert entries.count("FEEDBACK_RECEIVED") == 10
        assert entries.count("REOPEN") == 5  # each "no" found it closed by the "yes" before
        current = get(api, again)["resolution"]
        assert current["feedback_text"] == "n9" and current["resolution_confirmed"] is False
        assert current["satisfaction_score"] == 3

        start = threading.Barrier(10)

        def submit(i: int) -> httpx.Response:
            start.wait()
            body = {"resolution_confirmed": i % 2 == 0, "satisfaction_score": 1 + i % 5}
            return feedback(api, raced, body)

        with ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(submit, range(10)))
        statuses = [r.status_code for r in responses]
        print("\nconcurrent answers over HTTP:", statuses)
        assert set(statuses) <= {200, 409}, [r.text for r in responses]
        assert all(r.json()["code"] == "concurrent_update" for r in responses if r.status_code == 409)
        page = history(api, raced)
        entries = [e["action_type"] for e in page["action_history"]]
        assert entries.count("FEEDBACK_RECEIVED") == statuses.count(200) >= 1
        assert page["total_actions"] == len(entries)  # the version is 1 + the entries: none lost, none extra
        ids = sorted(int(e["id"].split("-")[1]) for e in page["action_history"])
        assert ids == list(range(2, len(entries) + 2))
