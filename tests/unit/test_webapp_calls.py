"""The web client's calls (webapp-calls.md) through the HTTP adapter, on the in-memory container,
and the guarantees they must not weaken: a user's `force` never forces, `user` naming someone else
is refused, the legacy list never lists another user's tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.container import Container
from shared.domain.models import (
    AgentMode,
    ControlsUpdate,
    Notification,
    NotificationKind,
    Principal,
    ProcessMessage,
)
from shared.storage.memory import InMemoryMessageQueue
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

ALICE, BOB, STAFF = bearer("alice"), bearer("bob"), bearer("sam", "staff")
ADMIN = Principal(sub="ada", roles=frozenset({"admin"}))
WEB = {"Accept": "*/*"}  # what the web client sends

pytestmark = pytest.mark.usefixtures("container")


def create(headers: dict[str, str], **fields: Any) -> Any:
    body = {"issue_type": "VPN drops every hour", "description": "the vpn disconnects", **fields}
    return invoke("tickets_create", "POST", json_body=body, headers={**headers, **WEB})


def created(headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = create(headers, **fields)
    assert response.status_code == 201, response.get_body()
    return payload(response)


def stored(c: Container) -> int:
    return len(c.tickets.list_all(None, 100, None).results)


def ticket_call(name: str, tid: int, headers: dict[str, str], method: str = "GET", body: Any = None) -> Any:
    return invoke(name, method, json_body=body, headers={**headers, **WEB}, route={"id": str(tid)})


# ---- GET /tickets/list/ ------------------------------------------------------------------


def test_the_legacy_list_is_a_bare_array_with_the_cursor_in_a_header() -> None:
    ids = [created(ALICE)["id"] for _ in range(3)]
    first = invoke("tickets_list_alias", headers={**ALICE, **WEB}, params={"limit": "2"})
    assert first.status_code == 200 and first.mimetype == "application/json"
    body = payload(first)
    assert isinstance(body, list) and [t["id"] for t in body] == ids[::-1][:2]
    assert {"id", "issue_type", "category", "status", "created_at", "priority"} <= set(body[0])
    cursor = first.headers["X-Next-Cursor"]
    assert "X-Next-Cursor" in first.headers["Access-Control-Expose-Headers"]
    rest = invoke("tickets_list_alias", headers=ALICE, params={"limit": "100", "cursor": cursor})
    assert [t["id"] for t in payload(rest)] == ids[:1] and "X-Next-Cursor" not in rest.headers
    envelope = payload(invoke("tickets_list", headers=ALICE, params={"limit": "2"}))
    assert [t["id"] for t in envelope["results"]] == ids[::-1][:2] and envelope["next_cursor"] == cursor


def test_the_legacy_list_never_lists_another_users_tickets() -> None:
    bobs = {created(BOB)["id"] for _ in range(3)}
    mine = created(ALICE)["id"]
    for params in ({"limit": "100"}, {"limit": "5"}, {"mine": "false"}, {"status": "new"}):
        listed = payload(invoke("tickets_list_alias", headers=ALICE, params=params))
        assert [t["id"] for t in listed] == [mine], params
    # The app sends no owner parameter; one naming another user is an unknown field, refused.
    for params in ({"user": "bob"}, {"owner": "bob"}, {"user_id": "bob"}):
        refused = invoke("tickets_list_alias", headers=ALICE, params=params)
        assert refused.status_code == 400 and payload(refused)["code"] == "validation_error", params
    # A cursor is a position, not a filter: bob's ticket keys skip nothing of his into alice's page.
    for cursor in ("000000000000", "999999999999"):
        page = payload(invoke("tickets_list_alias", headers=ALICE, params={"cursor": cursor}))
        assert not {t["id"] for t in page} & bobs
    staff = payload(invoke("tickets_list_alias", headers=STAFF, params={"limit": "100"}))
    assert {t["id"] for t in staff} == {*bobs, mine}


# ---- POST /tickets/ with the form's body ---------------------------------------------------


def test_the_forms_body_is_accepted_with_the_callers_user_and_status_new() -> None:
    body = created(ALICE, user="alice", category="mobile", status="new")
    assert body["user"] == "alice" and body["status"] == "new"
    assert body["category"] == "phone"  # `mobile` is SPEC §5's `phone`, and shown as such
    assert isinstance(body["id"], int)
    fetched = payload(ticket_call("tickets_get", body["id"], ALICE))
    assert fetched["category"] == "phone"


def test_user_naming_someone_else_is_refused_and_nothing_is_written(container: Container) -> None:
    for headers, user in ((ALICE, "bob"), (ALICE, "Alice"), (ALICE, ""), (STAFF, "alice")):
        refused = create(headers, user=user)
        assert refused.status_code == 400, user
        problem = payload(refused)
        assert problem["code"] == "validation_error" and problem["errors"][0]["loc"] == "user"
    assert stored(container) == 0
    assert payload(invoke("tickets_list_alias", headers=BOB)) == []


@pytest.mark.parametrize("status", ["open", "in-progress", "in_progress", "resolved", "closed", "", "New", 1])
def test_a_create_can_only_say_status_new(status: Any, container: Container) -> None:
    refused = create(ALICE, status=status)
    assert refused.status_code == 400 and payload(refused)["errors"][0]["loc"] == "status"
    assert stored(container) == 0


def test_unknown_categories_are_still_refused(container: Container) -> None:
    for category in ("Mobile", "tablet", "mobile-phone"):
        assert create(ALICE, category=category).status_code == 400, category
    assert stored(container) == 0


# ---- POST /tickets/{id}/status/ -----------------------------------------------------------


def test_staff_set_hyphenated_statuses() -> None:
    tid = created(ALICE)["id"]
    for status, expected in (
        ("in-progress", "in_progress"),
        ("pending-clarification", "pending_clarification"),
    ):
        changed = ticket_call("tickets_status", tid, STAFF, "POST", {"status": status})
        assert changed.status_code == 200 and payload(changed)["status"] == expected
    listed = invoke("tickets_list_alias", headers=ALICE, params={"status": "pending-clarification"})
    assert [t["id"] for t in payload(listed)] == [tid]


def test_an_owner_may_close_their_own_ticket_and_nothing_else(container: Container) -> None:
    tid = created(ALICE)["id"]
    for body in (
        {"status": "resolved"},
        {"status": "in-progress"},
        {"status": "closed", "priority": "low"},
        {"status": "closed", "assigned_team": "network"},
    ):
        refused = ticket_call("tickets_status", tid, ALICE, "POST", body)
        assert refused.status_code == 403 and payload(refused)["code"] == "forbidden", body
    assert container.tickets.get(tid).version == 1  # type: ignore[union-attr]
    closed = ticket_call("tickets_status", tid, ALICE, "POST", {"status": "closed"})
    assert closed.status_code == 200 and payload(closed)["status"] == "closed"
    entry = payload(ticket_call("tickets_history", tid, ALICE))["action_history"][0]
    assert entry["action_type"] == "STATUS_CHANGE" and entry["executed_by"] == "alice"


def test_another_users_ticket_is_404_whatever_the_status_asked(container: Container) -> None:
    tid = created(BOB)["id"]
    for body in ({"status": "closed"}, {"status": "resolved"}):
        missing = ticket_call("tickets_status", tid, ALICE, "POST", body)
        assert missing.status_code == 404 and payload(missing)["code"] == "not_found"
    assert container.tickets.get(tid).status == "new"  # type: ignore[union-attr]


# ---- POST /tickets/{id}/process/ ----------------------------------------------------------


def test_analyze_now_with_force_is_accepted_for_a_user_and_never_forces(container: Container) -> None:
    tid = created(ALICE)["id"]
    first = ticket_call("agent_process", tid, ALICE, "POST", {"force": True})
    assert first.status_code == 202
    assert isinstance(container.queue, InMemoryMessageQueue)
    assert [m["force"] for m in container.queue.messages("agent-actions")] == [False]


# ---- agent status, similar tickets, recommendations ------------------------------------------


def run_agent(c: Container, tid: int) -> None:
    c.agent_worker.execute(ProcessMessage(ticket_id=tid, request_id=f"r{tid}", requested_by="alice"))


def test_agent_status_before_and_after_the_analysis(container: Container) -> None:
    tid = created(
        ALICE, issue_type="Forgot my password", description="I forgot my password and am locked out"
    )["id"]
    before = payload(ticket_call("tickets_agent_status", tid, ALICE))
    assert before == {
        "ticket_id": tid,
        "status": "new",
        "agent_processed": False,
        "agent_response": None,
        "last_updated": None,
    }
    run_agent(container, tid)
    after = payload(ticket_call("tickets_agent_status", tid, ALICE))
    response = after["agent_response"]
    assert after["agent_processed"] is True and after["last_updated"]
    assert 0 <= response["confidence"] <= 1 and response["recommended_action"] and response["reasoning"]
    assert {"steps", "success_probability", "estimated_time"} <= set(response["solution"])
    assert response["solution"]["steps"] and "severity" in response["analysis"]
    assert ticket_call("tickets_agent_status", tid, BOB).status_code == 404
    assert ticket_call("tickets_agent_status", tid, STAFF).status_code == 200


def test_similar_tickets_are_the_callers_own_and_never_another_users() -> None:
    tid = created(ALICE, issue_type="VPN keeps disconnecting", description="vpn drops")["id"]
    mine = created(ALICE, issue_type="VPN disconnects at home", description="the vpn drops")["id"]
    created(ALICE, issue_type="Printer jam", description="paper stuck in the printer")
    bobs = created(BOB, issue_type="VPN keeps disconnecting", description="vpn drops")["id"]
    got = payload(ticket_call("tickets_ai_suggestions", tid, ALICE))
    similar = got["similar_tickets"]
    assert [s["ticket_id"] for s in similar] == [mine]
    assert {"ticket_id", "issue_type", "category", "status"} <= set(similar[0])
    assert ticket_call("tickets_ai_suggestions", tid, BOB).status_code == 404
    staff = payload(ticket_call("tickets_ai_suggestions", tid, STAFF))["similar_tickets"]
    assert [s["ticket_id"] for s in staff][:2] == [bobs, mine]  # staff see every ticket


def test_similar_tickets_are_at_most_five_and_never_the_ticket_itself() -> None:
    tid = created(ALICE)["id"]
    for _ in range(8):
        created(ALICE)
    similar = payload(ticket_call("tickets_ai_suggestions", tid, ALICE))["similar_tickets"]
    assert len(similar) == 5 and tid not in {s["ticket_id"] for s in similar}


def test_recommendations_show_what_the_agent_would_have_done_on_deferred_tickets(
    container: Container,
) -> None:
    password = {"issue_type": "Password reset", "description": "I forgot my password, please reset it"}
    acted = created(ALICE, category="account", **password)["id"]
    run_agent(container, acted)  # acted on: not a recommendation
    container.controls.update(ADMIN, ControlsUpdate(enabled=False, reason="incident"))
    paused = created(ALICE, category="account", **password)["id"]
    run_agent(container, paused)
    container.controls.update(ADMIN, ControlsUpdate(enabled=True, mode=AgentMode.SHADOW, reason="try"))
    shadowed = created(BOB, category="account", **password)["id"]
    run_agent(container, shadowed)
    created(BOB)  # never analysed
    response = invoke("tickets_agent_recommendations", headers={**STAFF, **WEB})
    assert response.status_code == 200
    got = payload(response)
    assert [r["ticket_id"] for r in got] == [shadowed, paused]
    for item in got:
        assert {"ticket_id", "title", "created_at", "category", "priority", "recommendations"} <= set(item)
        (rec,) = item["recommendations"]
        assert rec["type"] in ("high_confidence_solution", "suggested_solution")
        assert rec["message"].startswith("The agent would have") and 0 <= rec["confidence"] <= 1
    assert got[0]["deferred_because"] == "shadow_mode" and got[1]["deferred_because"]
    assert got[1]["recommendations"][0]["type"] == "high_confidence_solution"
    assert "Steps:" in got[1]["recommendations"][0]["message"]
    refused = invoke("tickets_agent_recommendations", headers=ALICE)
    assert refused.status_code == 403 and payload(refused)["detail"]


def test_recommendations_read_a_bounded_number_of_histories(container: Container) -> None:
    container.controls.update(ADMIN, ControlsUpdate(enabled=False, reason="incident"))
    for _ in range(30):
        run_agent(container, created(ALICE)["id"])
    reads = 0
    history = container.tickets.history

    def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return history(*args)

    container.insight_service._tickets.history = counted  # type: ignore[method-assign]
    got = payload(invoke("tickets_agent_recommendations", headers=STAFF))
    assert len(got) == 20 and reads == 20


# ---- notifications read state ------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def notify(c: Container, user: str, n: int) -> None:
    c.notifications.add(
        Notification(
            id=f"followup-{n}-2",
            user=user,
            kind=NotificationKind.FOLLOWUP,
            ticket_id=n,
            title="Is everything still working?",
            message=f"Ticket {n}",
            created_at=NOW + timedelta(minutes=n),
            links={"ticket": f"/api/tickets/{n}/"},
        )
    )


def bell(headers: dict[str, str]) -> list[dict[str, Any]]:
    response = invoke("notifications_list_web", headers={**headers, **WEB})
    assert response.status_code == 200
    return payload(response)  # type: ignore[no-any-return]


def mark(headers: dict[str, str], key: str) -> Any:
    return invoke("notifications_mark_read", "PATCH", headers={**headers, **WEB}, route={"key": key})


def test_marking_one_read_changes_only_the_callers_own(container: Container) -> None:
    for n in range(3):
        notify(container, "alice", n)
    notify(container, "bob", 9)
    shown = bell(ALICE)
    assert [n["is_read"] for n in shown] == [False, False, False]
    first = mark(ALICE, shown[1]["id"])
    assert first.status_code == 200 and payload(first) == {"marked": 1}
    assert [n["is_read"] for n in bell(ALICE)] == [False, True, False]
    assert mark(ALICE, shown[1]["id"]).status_code == 200  # again: still read
    bobs = bell(BOB)[0]["id"]
    missing = mark(ALICE, bobs)  # bob's key, in alice's name
    assert missing.status_code == 404 and payload(missing)["code"] == "not_found"
    assert [n["is_read"] for n in bell(BOB)] == [False]
    for key in ("nonsense", "1-x", "a" * 300, "00000000000000000-../x"):
        assert mark(ALICE, key).status_code == 404, key


def test_read_all_marks_the_callers_notifications_read(container: Container) -> None:
    for n in range(4):
        notify(container, "alice", n)
    notify(container, "bob", 9)
    response = invoke("notifications_read_all", "POST", headers={**ALICE, **WEB})
    assert response.status_code == 200 and payload(response) == {"marked": 4}
    assert all(n["is_read"] for n in bell(ALICE))
    assert [n["is_read"] for n in bell(BOB)] == [False]
    again = invoke("notifications_read_all", "POST", headers=ALICE)
    assert payload(again) == {"marked": 0}
    envelope = payload(invoke("notifications_list", headers=ALICE))
    assert all(n["read"] for n in envelope["results"])


def test_openapi_shows_the_web_clients_shapes() -> None:
    from functions.ops import openapi_document

    paths = openapi_document("test")["paths"]

    def answer(path: str, method: str = "get") -> dict[str, Any]:
        return paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]

    assert answer("/api/tickets/list/")["items"] == {"$ref": "#/components/schemas/TicketPublic"}
    assert answer("/api/tickets/")["title"] == "TicketPage"  # /tickets/ keeps the envelope
    assert answer("/api/tickets/agent/recommendations/")["items"]["$ref"].endswith("/TicketRecommendations")
    assert paths["/api/tickets/agent/recommendations/"]["get"]["x-required-role"] == "staff"
    assert "agent_response" in answer("/api/tickets/{id}/agent-status/")["properties"]
    assert "similar_tickets" in answer("/api/tickets/{id}/ai-suggestions/")["properties"]
    assert "marked" in answer("/api/auth/notifications/{key}/read/", "patch")["properties"]
    assert "marked" in answer("/api/auth/notifications/read-all/", "post")["properties"]
    created = paths["/api/tickets/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"user", "status"} <= set(created["properties"])
