"""Follow-ups end to end: auto-resolve → due-index item → the sweeper's message when due → in-app
notification and webhook, on the local host (the sweeper every second) with a real Azurite and a
local webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import httpx

from shared.storage.names import DUE, FOLLOWUP_QUEUE, poison
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.helpers import QuietHandler, local_server, serving, url_of

RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it. It was hunter2.",
    "category": "account",
}
ALICE, STAFF = bearer("alice"), bearer("sam", "staff")


class Hook(QuietHandler):
    def do_POST(self) -> None:
        server: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with server.lock:
            server.posts.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def hook() -> Any:
    server: Any = local_server(Hook)
    server.daemon_threads = True
    server.posts, server.lock = [], threading.Lock()
    return server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def auto_resolve(api: httpx.Client) -> dict[str, Any]:
    ticket = create_ticket(api, "alice", **RESET)
    assert api.post(f"/tickets/{ticket['id']}/process/", headers=ALICE).status_code == 202
    return wait_until(lambda: _resolved(api, ticket["id"]), timeout=20)


def _resolved(api: httpx.Client, ticket_id: int) -> dict[str, Any] | None:
    ticket = api.get(f"/tickets/{ticket_id}/", headers=ALICE).json()
    return ticket if ticket["status"] == "resolved" else None


def notifications(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/notifications/", headers=ALICE)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def followup_sent(api: httpx.Client, ticket_id: int) -> dict[str, Any] | None:
    ticket: dict[str, Any] = api.get(f"/tickets/{ticket_id}/", headers=ALICE).json()
    return ticket if ticket["resolution"]["followup_sent_at"] else None


def history(api: httpx.Client, ticket_id: int) -> list[dict[str, Any]]:
    return api.get(f"/tickets/{ticket_id}/action-history/", headers=ALICE).json()["action_history"]


def drained(stack: Stack) -> bool:
    """Every follow-up message deleted (approximate counts include the invisible ones) and none
    poisoned: every delivery, duplicates included, has run to its end."""
    count = stack.storage.queue(FOLLOWUP_QUEUE).get_queue_properties().approximate_message_count
    return count == 0


def poisoned(stack: Stack) -> int:
    try:
        queue = stack.storage.queue(poison(FOLLOWUP_QUEUE))
        return int(queue.get_queue_properties().approximate_message_count)
    except Exception:  # not created: nothing ever went there
        return 0


def due_items(stack: Stack) -> list[str]:
    return [e["RowKey"] for e in stack.storage.table(DUE).list_entities() if e["PartitionKey"] != "cursor"]


def test_an_auto_resolution_is_followed_up_once_in_app_and_on_the_webhook_even_delivered_twice(
    stack: Stack,
) -> None:
    with serving(hook()) as receiver:
        # A copy meeting a live claim looks again within 4 s (not 30) with short claims.
        host = stack.host(
            FOLLOWUP_DELAY_SECONDS=3, NOTIFY_WEBHOOK_URL=url_of(receiver, "/hook"), AGENT_CLAIM_SECONDS=3
        )
        with stack.client(host) as api:
            ticket = auto_resolve(api)
            # two more deliveries of the same follow-up, due at about the same time as the first
            copy = json.dumps({"ticket_id": ticket["id"], "action_seq": 2})
            for _ in range(2):
                stack.storage.queue(FOLLOWUP_QUEUE).send_message(copy, visibility_timeout=2)
            [notice] = wait_until(lambda: notifications(api), timeout=30)
            assert notice["id"] == f"followup-{ticket['id']}-2" and notice["kind"] == "followup"
            assert notice["title"] == "Is everything still working?" and notice["ticket_id"] == ticket["id"]
            # The notice is stored before the ticket's transaction (a crash between them is
            # completed by the retry), so the ticket may show it a moment later.
            followed = wait_until(lambda: followup_sent(api, ticket["id"]), timeout=10)
            assert followed["status"] == "resolved" and followed["resolution"]["followup_sent_at"]
            assert followed["resolution"]["outcome"] == "pending"
            sent, resolved = history(api, ticket["id"])
            assert (sent["action_type"], sent["executed_by"]) == ("FOLLOWUP_SENT", "system")
            assert resolved["action_type"] == "AUTO_RESOLVE"
            wait_until(lambda: drained(stack), timeout=60)
            assert poisoned(stack) == 0
            assert len(history(api, ticket["id"])) == 2 and len(notifications(api)) == 1
            # the follow-up's item is gone; the feedback window's waits its week
            assert wait_until(lambda: due_items(stack) == [f"assume-{ticket['id']}-2"], timeout=10)
            web = api.get("/auth/notifications/", headers=ALICE).json()
            # The web id is the notification's key (what `/{id}/read/` takes): its time, then its id.
            assert [n["id"].split("-", 1)[1] for n in web] == [notice["id"]] and web[0]["is_read"] is False
            assert api.get("/notifications/", headers=bearer("bob")).json()["results"] == []
            assert api.get("/notifications/", headers=ALICE, params={"scope": "staff"}).status_code == 403
            assert (
                api.get("/notifications/", headers=STAFF, params={"scope": "staff"}).json()["results"] == []
            )
    [post] = receiver.posts  # exactly one post for three deliveries
    assert set(post) == {"text"} and f"#{ticket['id']}" in post["text"]
    assert "hunter2" not in post["text"] and "Password reset" not in post["text"]


def test_a_webhook_that_is_down_does_not_lose_the_in_app_notification(stack: Stack) -> None:
    host = stack.host(FOLLOWUP_DELAY_SECONDS=3, NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{closed_port()}/hook")
    with stack.client(host) as api:
        ticket = auto_resolve(api)
        [notice] = wait_until(lambda: notifications(api), timeout=30)
        assert notice["id"] == f"followup-{ticket['id']}-2"
        followed = wait_until(lambda: followup_sent(api, ticket["id"]), timeout=10)
        assert followed["resolution"]["followup_sent_at"]
        assert [e["action_type"] for e in history(api, ticket["id"])] == ["FOLLOWUP_SENT", "AUTO_RESOLVE"]
        wait_until(lambda: drained(stack), timeout=30)
        assert poisoned(stack) == 0


def test_an_unanswered_resolution_is_assumed_when_its_window_ends(stack: Stack) -> None:
    host = stack.host(FOLLOWUP_DELAY_SECONDS=1, FEEDBACK_WINDOW_SECONDS=4)
    with stack.client(host) as api:
        ticket = auto_resolve(api)
        wait_until(lambda: notifications(api), timeout=30)

        def assumed() -> dict[str, Any] | None:
            seen = api.get(f"/tickets/{ticket['id']}/", headers=ALICE).json()
            return seen if seen["resolution"]["outcome"] == "assumed" else None

        seen = wait_until(assumed, timeout=30)
        assert seen["status"] == "resolved" and seen["resolution"]["outcome_at"]
        kinds = [(e["action_type"], e["executed_by"]) for e in history(api, ticket["id"])]
        assert kinds == [
            ("RESOLUTION_ASSUMED", "system"),
            ("FOLLOWUP_SENT", "system"),
            ("AUTO_RESOLVE", "autonomous_agent"),
        ]
        wait_until(lambda: due_items(stack) == [], timeout=10)
        # an answer after the window is still taken
        answer = {"resolution_confirmed": True, "satisfaction_score": 4}
        response = api.post(f"/tickets/{ticket['id']}/resolution-feedback/", headers=ALICE, json=answer)
        assert response.status_code == 200, response.text
        assert api.get(f"/tickets/{ticket['id']}/", headers=ALICE).json()["status"] == "closed"
