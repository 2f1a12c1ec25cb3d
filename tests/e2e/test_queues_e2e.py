"""Work queues over HTTP through the local host: the staff escalation queue the agent fills, a
user's filtered list, and the web client's legacy bare-array list."""

from __future__ import annotations

import httpx

from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until

STAFF = bearer("sam", "staff")
RANSOM = {
    "issue_type": "Files encrypted",
    "description": "Ransomware encrypted my files and there is a ransom note on the screen.",
    "category": "security",
}


def queue(api: httpx.Client, headers: dict[str, str], **params: str | int) -> list[int]:
    """Every page of a list, in order."""
    ids: list[int] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get("/tickets/", headers=headers, params=query)
        assert response.status_code == 200, response.text
        ids += [t["id"] for t in response.json()["results"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids


def test_staff_escalation_queue_user_lists_and_the_legacy_list(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        ransom = [create_ticket(api, user, **RANSOM)["id"] for user in ("alice", "bob", "alice")]
        calm = create_ticket(api, "alice", issue_type="Laptop")["id"]
        for ticket_id, user in zip(ransom, ("alice", "bob", "alice"), strict=True):
            assert api.post(f"/tickets/{ticket_id}/process/", headers=bearer(user)).status_code == 202
        # The agent escalates them: the escalation queue lists them as soon as they are.
        wait_until(lambda: queue(api, STAFF, status="escalated", limit=2) == ransom[::-1], timeout=30)
        urgent = [queue(api, STAFF, status="escalated", priority=p, limit=1) for p in ("high", "critical")]
        assert sorted(urgent[0] + urgent[1]) == sorted(ransom)  # the agent raises their priority
        assert queue(api, STAFF, status="new") == [calm]
        # Users: their own tickets only, by status.
        assert queue(api, bearer("alice"), status="escalated", limit=1) == [ransom[2], ransom[0]]
        assert queue(api, bearer("bob"), status="escalated") == [ransom[1]]
        assert queue(api, bearer("bob"), status="new") == []
        refused = api.get("/tickets/", headers=bearer("alice"), params={"status": "new", "priority": "high"})
        assert refused.status_code == 400
        # A person takes one: it leaves the escalation queue and enters the team's.
        moved = api.post(
            f"/tickets/{ransom[1]}/status/",
            headers=STAFF,
            json={"status": "assigned", "assigned_team": "security"},
        )
        assert moved.status_code == 200, moved.text
        assert queue(api, STAFF, status="escalated") == [ransom[2], ransom[0]]
        assert queue(api, STAFF, status="assigned", assigned_team="security") == [ransom[1]]
        # The web client's list: a bare array, the next page's cursor in a header.
        first = api.get("/tickets/list/", headers=STAFF, params={"status": "escalated", "limit": 1})
        assert [t["id"] for t in first.json()] == [ransom[2]]
        rest = api.get(
            "/tickets/list/",
            headers=STAFF,
            params={"status": "escalated", "limit": 1, "cursor": first.headers["X-Next-Cursor"]},
        )
        assert [t["id"] for t in rest.json()] == [ransom[0]]
        assert [t["id"] for t in api.get("/tickets/list/", headers=bearer("bob")).json()] == [ransom[1]]
        tampered = api.get(
            "/tickets/list/",
            headers=STAFF,
            params={"status": "escalated", "cursor": first.headers["X-Next-Cursor"][:-2] + "xx"},
        )
        assert tampered.status_code == 400
