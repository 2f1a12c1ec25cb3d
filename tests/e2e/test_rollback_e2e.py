"""An admin's rollback end to end: the agent acts through the queue, an admin undoes it over HTTP,
on real hosts sharing one Azurite."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from shared.storage.names import DUE, FOLLOWUP_QUEUE
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until

STAFF, ADMIN = bearer("sam", "staff"), bearer("ada", "admin")
RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}


def history(api: httpx.Client, ticket_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/tickets/{ticket_id}/action-history/", headers=STAFF, params={"limit": 100})
    assert response.status_code == 200
    return response.json()["action_history"]  # type: ignore[no-any-return]


def ticket(api: httpx.Client, ticket_id: int) -> dict[str, Any]:
    return api.get(f"/tickets/{ticket_id}/", headers=STAFF).json()  # type: ignore[no-any-return]


def auto_resolved(api: httpx.Client, user: str = "alice") -> tuple[int, str]:
    """A ticket the agent auto-resolved through the queue, and the action's id."""
    created = create_ticket(api, user, **RESET)
    assert api.post(f"/tickets/{created['id']}/process/", headers=bearer(user)).status_code == 202
    wait_until(lambda: ticket(api, created["id"])["status"] == "resolved", timeout=20)
    [action] = history(api, created["id"])
    assert action["action_type"] == "AUTO_RESOLVE"
    return created["id"], action["id"]


def rollback(
    api: httpx.Client, action_id: str, body: Any = None, headers: dict[str, str] = ADMIN
) -> httpx.Response:
    return api.post(f"/tickets/actions/{action_id}/rollback/", json=body, headers=headers)


def test_an_admin_rolls_back_an_auto_resolution_and_staff_can_run_the_agent_again(stack: Stack) -> None:
    host = stack.host(FOLLOWUP_DELAY_SECONDS=8)  # the follow-up comes due after the rollback: not sent
    with stack.client(host) as api:
        ticket_id, action_id = auto_resolved(api)
        assert action_id == f"{ticket_id}-2"
        followups = stack.storage.queue(FOLLOWUP_QUEUE)
        due = stack.storage.table(DUE)  # the follow-up waits in the due index until the sweeper sends it

        def scheduled() -> list[str]:
            return [e["RowKey"] for e in due.list_entities() if e["RowKey"].startswith("followup-")]

        assert scheduled() == [f"followup-{ticket_id}-2"]

        assert rollback(api, action_id, headers={}).status_code == 401
        for who in (bearer("alice"), bearer("bob"), STAFF):  # the owner, another user, staff
            assert rollback(api, action_id, headers=who).status_code == 403
        for bad in ("abc", "1-", "-1-2", "99999999999999-1", f"{ticket_id}-9", f"{ticket_id + 1}-2"):
            refused = rollback(api, bad)
            assert refused.status_code == 404 and refused.json()["code"] == "not_found", bad
        assert ticket(api, ticket_id)["status"] == "resolved"  # nothing so far changed it

        done = rollback(api, action_id, {"reason": "Wrong article"})
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["ticket_id"] == ticket_id and body["action_type"] == "AUTO_RESOLVE"
        assert body["rollback_reason"] == "Wrong article" and body["ticket"]["status"] == "new"
        assert done.headers["RateLimit-Limit"] == "10"
        now = ticket(api, ticket_id)
        assert now["status"] == "new" and now["resolution"]["outcome"] == "voided"
        undo, original = history(api, ticket_id)  # newest first
        assert undo["action_type"] == "ROLLBACK" and undo["executed_by"] == "ada"
        assert undo["action_params"]["action_id"] == action_id and not undo["rollback_possible"]
        assert original["id"] == action_id and original["rolled_back"] and original["rolled_back_by"] == "ada"
        assert (
            original["rollback_reason"] == "Wrong article"
            and original["rolled_back_at"] == undo["executed_at"]
        )

        [notice] = api.get("/notifications/", headers=bearer("alice")).json()["results"]
        assert notice["id"] == f"rollback-{action_id}" and notice["kind"] == "rollback"
        assert notice["ticket_id"] == ticket_id

        again = rollback(api, action_id, {"force": True})
        assert again.status_code == 409 and again.json()["code"] == "already_rolled_back"
        assert not_reversible(api, undo["id"])

        # sent when due, found voided by its consumer, which removes the item
        wait_until(lambda: scheduled() == [], timeout=30)
        wait_until(lambda: followups.get_queue_properties().approximate_message_count == 0, timeout=30)
        assert [n["kind"] for n in api.get("/notifications/", headers=bearer("alice")).json()["results"]] == [
            "rollback"
        ]
        assert ticket(api, ticket_id)["resolution"]["followup_sent_at"] is None

        # The owner cannot have the agent redo what an admin undid; staff can, with force.
        assert (
            api.post(f"/tickets/{ticket_id}/process/", headers=bearer("alice")).json()["status"] == "skipped"
        )
        forced = api.post(f"/tickets/{ticket_id}/process/", headers=STAFF, json={"force": True})
        assert forced.status_code == 202
        wait_until(lambda: ticket(api, ticket_id)["status"] == "resolved", timeout=20)
        assert ticket(api, ticket_id)["resolution"]["outcome"] == "pending"
        assert [e["action_type"] for e in history(api, ticket_id)] == [
            "AUTO_RESOLVE",
            "ROLLBACK",
            "AUTO_RESOLVE",
        ]


def not_reversible(api: httpx.Client, action_id: str) -> bool:
    refused = rollback(api, action_id, {"force": True})
    return refused.status_code == 409 and refused.json()["code"] == "not_reversible"


def test_a_human_change_since_the_action_needs_force_and_force_records_what_it_overwrote(
    stack: Stack,
) -> None:
    host = stack.host()
    with stack.client(host) as api:
        ticket_id, action_id = auto_resolved(api)
        change = {"status": "in_progress", "reason": "the user called", "priority": "high"}
        assert api.post(f"/tickets/{ticket_id}/status/", headers=STAFF, json=change).status_code == 200
        assert not_reversible(api, f"{ticket_id}-3")  # the human change itself

        refused = rollback(api, action_id)
        assert refused.status_code == 409
        problem = refused.json()
        assert problem["code"] == "ticket_changed"
        assert problem["current"] == {"status": "in_progress", "priority": "high"}
        assert problem["expected"] == {"status": "resolved", "priority": "medium"}
        assert ticket(api, ticket_id)["status"] == "in_progress" and len(history(api, ticket_id)) == 2

        forced = rollback(api, action_id, {"force": True})
        assert forced.status_code == 200 and forced.json()["ticket"]["status"] == "new"
        undo = history(api, ticket_id)[0]
        assert undo["action_params"]["overwrote"] == {"status": "in_progress", "priority": "high"}
        assert undo["action_params"]["force"] is True


def test_20_concurrent_rollbacks_of_one_action_over_two_hosts_commit_once(stack: Stack) -> None:
    hosts = [stack.host(), stack.host()]
    clients = [stack.client(h) for h in hosts]
    ticket_id, action_id = auto_resolved(clients[0])
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda i: rollback(clients[i % 2], action_id), range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 19, [r.text for r in responses if r.status_code not in (200, 409)]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_rolled_back"}
    assert [e["action_type"] for e in history(clients[1], ticket_id)] == ["ROLLBACK", "AUTO_RESOLVE"]
    assert ticket(clients[1], ticket_id)["resolution"]["outcome"] == "voided"
    for client in clients:
        client.close()


def test_rollbacks_racing_human_changes_are_whole_or_refused(stack: Stack) -> None:
    hosts = [stack.host(), stack.host()]
    clients = [stack.client(h) for h in hosts]
    actions = [auto_resolved(clients[0], f"user-{i}") for i in range(6)]
    change = {"status": "in_progress", "reason": "taking it"}

    def race(i: int) -> tuple[httpx.Response, httpx.Response]:
        ticket_id, action_id = actions[i]
        with ThreadPoolExecutor(2) as pool:
            undo = pool.submit(rollback, clients[i % 2], action_id)
            human = pool.submit(
                clients[(i + 1) % 2].post, f"/tickets/{ticket_id}/status/", headers=STAFF, json=change
            )
            return undo.result(), human.result()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(race, range(6)))
    for (ticket_id, action_id), (undo, human) in zip(actions, results, strict=True):
        assert human.status_code == 200, human.text
        entries = history(clients[0], ticket_id)
        original = next(e for e in entries if e["id"] == action_id)
        now = ticket(clients[0], ticket_id)
        kinds = [e["action_type"] for e in entries]
        if undo.status_code == 200:  # the rollback won, and the human change came after it
            assert kinds == ["STATUS_CHANGE", "ROLLBACK", "AUTO_RESOLVE"]
            assert original["rolled_back"] and now["resolution"]["outcome"] == "voided"
        else:  # the human change won: the rollback changed nothing
            assert undo.status_code == 409 and undo.json()["code"] == "ticket_changed", undo.text
            assert kinds == ["STATUS_CHANGE", "AUTO_RESOLVE"]
            assert not original["rolled_back"] and now["resolution"]["outcome"] == "pending"
        assert now["status"] == "in_progress" == entries[0]["after_state"]["status"]
    for client in clients:
        client.close()


def test_the_third_rollback_past_2_per_hour_is_429_and_changes_nothing(stack: Stack) -> None:
    host = stack.host(ROLLBACK_THROTTLE_RATE="2/hour")
    with stack.client(host) as api:
        actions = [auto_resolved(api) for _ in range(3)]
        assert [rollback(api, a).status_code for _, a in actions[:2]] == [200, 200]
        refused = rollback(api, actions[2][1])
        assert refused.status_code == 429 and refused.json()["code"] == "throttled"
        assert refused.headers["RateLimit-Limit"] == "2" and refused.headers["RateLimit-Remaining"] == "0"
        assert int(refused.headers["Retry-After"]) >= 1
        assert ticket(api, actions[2][0])["status"] == "resolved" and len(history(api, actions[2][0])) == 1


def test_the_fourth_rollback_in_an_hour_pauses_the_agent_until_an_admin_resumes_it(stack: Stack) -> None:
    host = stack.host(AUTO_PAUSE_ROLLBACKS_PER_HOUR=3)
    with stack.client(host) as api:
        actions = [auto_resolved(api) for _ in range(4)]
        for _, action_id in actions[:3]:
            assert rollback(api, action_id).status_code == 200
        assert api.get("/agent/controls/", headers=ADMIN).json()["enabled"] is True
        assert rollback(api, actions[3][1]).status_code == 200
        controls = api.get("/agent/controls/", headers=ADMIN).json()
        assert controls["enabled"] is False and controls["updated_by"] == "system"
        assert "4 rollbacks" in controls["reason"]

        paused = create_ticket(api, "alice", **RESET)
        assert api.post(f"/tickets/{paused['id']}/process/", headers=bearer("alice")).status_code == 202
        wait_until(lambda: history(api, paused["id"]), timeout=20)
        [deferral] = history(api, paused["id"])
        assert (
            deferral["action_type"] == "DEFER_TO_HUMAN"
            and deferral["action_params"]["reason"] == "agent_disabled"
        )

        resumed = api.put("/agent/controls/", headers=ADMIN, json={"enabled": True, "reason": "checked"})
        assert resumed.status_code == 200 and resumed.json()["enabled"] is True
        ticket_id, _ = auto_resolved(api)  # the agent acts again
        assert ticket(api, ticket_id)["status"] == "resolved"
