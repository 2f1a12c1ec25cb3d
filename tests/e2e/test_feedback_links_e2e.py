"""One-click answers end to end on the local host: auto-resolve → the follow-up's notification and
webhook post carry the links → opening the "no" link changes nothing → posting its form reopens
and escalates the ticket → the same link again, or altered, changes nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.conftest import bearer
from tests.e2e.conftest import Stack, wait_until
from tests.e2e.test_followups_e2e import auto_resolve, hook, notifications
from tests.helpers import serving, url_of

ALICE = bearer("alice")


def path_of(url: str) -> str:
    """The link's path under the API root (the host's base URL ends in /api)."""
    path = urlsplit(url).path
    assert path.startswith("/api/feedback/") and path.endswith("/")
    return path.removeprefix("/api")


def state(api: httpx.Client, ticket_id: int) -> tuple[Any, Any]:
    ticket = api.get(f"/tickets/{ticket_id}/", headers=ALICE).json()
    history = api.get(f"/tickets/{ticket_id}/action-history/", headers=ALICE).json()["action_history"]
    return ticket, history


def test_the_no_link_of_a_followup_reopens_the_ticket_once(stack: Stack) -> None:
    with serving(hook()) as receiver:
        host = stack.host(FOLLOWUP_DELAY_SECONDS=3, NOTIFY_WEBHOOK_URL=url_of(receiver, "/hook"))
        with stack.client(host) as api:
            ticket = auto_resolve(api)
            [notice] = wait_until(lambda: notifications(api), timeout=30)
            assert set(notice["links"]) == {"ticket", "yes", "no"}
            yes, no = path_of(notice["links"]["yes"]), path_of(notice["links"]["no"])
            wait_until(lambda: receiver.posts, timeout=30)
            [post] = receiver.posts
            assert notice["links"]["yes"] in post["text"] and notice["links"]["no"] in post["text"]
            assert "hunter2" not in post["text"]

            # A link scanner or an unfurler fetches the link: nothing changes.
            before = state(api, ticket["id"])
            for headers in ({}, {"Accept": "text/html"}, {"User-Agent": "Slackbot-LinkExpanding 1.0"}):
                page = api.get(no, headers=headers)
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
                assert "default-src 'none'" in page.headers["content-security-policy"]
            assert state(api, ticket["id"]) == before

            answered = api.post(
                no,
                content=b"satisfaction_score=0&feedback_text=still+broken",
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
            )
            assert answered.status_code == 200 and "Thank you" in answered.text
            reopened, history = state(api, ticket["id"])
            assert reopened["status"] == "escalated" and reopened["priority"] == "high"
            assert reopened["resolution"]["outcome"] == "failed" and reopened["resolution"]["reopened"]
            assert reopened["resolution"]["satisfaction_score"] is None
            assert reopened["resolution"]["reopened_reason"] == "still broken"
            assert [e["action_type"] for e in history][:2] == ["REOPEN", "FEEDBACK_RECEIVED"]
            assert history[0]["executed_by"] == "alice"

            after = state(api, ticket["id"])
            again = api.post(no, headers={"Accept": "application/problem+json"})
            assert again.status_code == 410 and again.json()["code"] == "link_used"
            altered = no[:-3] + ("A" if no[-3] != "A" else "B") + no[-2:]
            assert api.post(altered).status_code == 400 and api.get(altered).status_code == 400
            assert api.get(yes).status_code == 200  # the other answer's link is still open
            assert state(api, ticket["id"]) == after
