"""The web client's contract (webapp-calls.md): each call replayed through the local host exactly as
the app sends it (trailing slash, Origin, Authorization and Content-Type on every request, GETs
included, `Accept: */*`, the same body), each after its preflight, asserting the fields it reads,
with user, staff and admin tokens where the row differs by role.

The analytics rows check the fields the app reads; their figures after a scenario are checked in
tests/e2e/test_analytics_reads_e2e.py."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import token
from tests.e2e.conftest import Stack, wait_until
from tests.e2e.test_webapp_login_cors_e2e import ORIGIN, host

PASSWORD_TICKET = {"issue_type": "Password reset", "description": "I forgot my password, please reset it"}


class App:
    """The web app's fetch wrapper: every call is a preflight and then the request."""

    def __init__(self, api: httpx.Client, access: str) -> None:
        self.api, self.access = api, access

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        assert path.endswith("/") or "/?" in path, path  # the app always ends the path with "/"
        preflight = self.api.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 204, (method, path, preflight.status_code)
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["access-control-allow-methods"] == method
        assert {"authorization", "content-type"} <= set(
            preflight.headers["access-control-allow-headers"].split(", ")
        )
        headers = {
            "Origin": ORIGIN,
            "Accept": "*/*",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.access}",
        }
        content = None if body is None else json.dumps(body)
        response = self.api.request(method, path, headers=headers, content=content)
        assert response.headers["access-control-allow-origin"] == ORIGIN, path
        # The app parses a body only when the content type says application/json: errors too.
        if response.content:
            assert "application/json" in response.headers["content-type"], (path, response.headers)
        return response

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def refused(self, method: str, path: str, status: int, body: Any = None) -> dict[str, Any]:
        response = self.call(method, path, body)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        problem = response.json()
        assert problem["detail"] and problem["status"] == status  # a sentence the app shows
        return problem  # type: ignore[no-any-return]


def login(api: httpx.Client, email: str) -> App:
    """The login screen: `POST /api/auth/login/`, then the header's `GET /api/auth/profile/`."""
    app = App(api, "")
    answered = api.post(
        "/auth/login/",
        headers={"Origin": ORIGIN, "Accept": "*/*", "Content-Type": "application/json"},
        content=json.dumps({"email": email, "password": "dev-password"}),
    )
    assert answered.status_code == 200, answered.text
    app.access = answered.json()["access"]
    assert answered.json()["refresh"]
    profile = app.ok("GET", "/auth/profile/")
    assert {"id", "email", "first_name", "last_name", "is_staff"} <= set(profile)
    return app


def test_a_users_screens_make_every_call_as_the_app_does(stack: Stack) -> None:
    running = host(stack, FOLLOWUP_DELAY_SECONDS="2", DEV_ADMIN_EMAILS="boss@example.com")
    with stack.client(running) as api:
        user = login(api, "alice@example.com")
        me = user.ok("GET", "/auth/profile/")

        # ticket form: the form's whole body, `user` = the profile's id, category `mobile`
        form = {
            "user": me["id"],
            "issue_type": "Phone will not sync",
            "description": "mail stopped",
            "category": "mobile",
            "status": "new",
        }
        mobile = user.ok("POST", "/tickets/", form, status=201)
        assert isinstance(mobile["id"], int) and mobile["category"] == "phone" and mobile["status"] == "new"
        someone_else = user.refused("POST", "/tickets/", 400, {**form, "user": "bob@example.com"})
        assert someone_else["errors"][0]["loc"] == "user"
        resolved = user.ok(
            "POST", "/tickets/", {**form, **PASSWORD_TICKET, "category": "account"}, status=201
        )

        # tickets screen and dashboard: bare arrays, newest first
        listed = user.ok("GET", "/tickets/list/?limit=100")
        assert [t["id"] for t in listed] == [resolved["id"], mobile["id"]]
        for t in listed:
            assert {"id", "issue_type", "category", "status", "created_at", "priority"} <= set(t)
        dashboard = user.call("GET", "/tickets/list/?limit=1")
        assert [t["id"] for t in dashboard.json()] == [resolved["id"]]
        assert (
            dashboard.headers["x-next-cursor"]
            and "X-Next-Cursor" in dashboard.headers["access-control-expose-headers"]
        )

        # ticket detail
        detail = user.ok("GET", f"/tickets/{resolved['id']}/")
        assert detail["issue_type"] == "Password reset" and "resolution" in detail

        # agent insights before any analysis
        status = user.ok("GET", f"/tickets/{resolved['id']}/agent-status/")
        assert status["agent_processed"] is False and status["agent_response"] is None

        # "Analyze Now": the app always sends force; a user's is ignored, never a 403
        queued = user.ok("POST", f"/tickets/{resolved['id']}/process/", {"force": True}, status=202)
        assert queued["status"] == "queued"
        wait_until(lambda: user.ok("GET", f"/tickets/{resolved['id']}/")["agent_processed"])
        again = user.ok("POST", f"/tickets/{resolved['id']}/process/", {"force": True})
        assert again["status"] == "skipped"  # a user's force never forces
        user.ok("POST", f"/tickets/{mobile['id']}/process/", status=202)  # the empty body

        # agent insights
        status = user.ok("GET", f"/tickets/{resolved['id']}/agent-status/")
        response = status["agent_response"]
        assert status["agent_processed"] is True and status["last_updated"]
        assert {"confidence", "recommended_action", "reasoning", "analysis", "solution"} <= set(response)
        assert {"steps", "success_probability", "estimated_time"} <= set(response["solution"])
        suggestions = user.ok("GET", f"/tickets/{resolved['id']}/ai-suggestions/")
        assert len(suggestions["similar_tickets"]) <= 5
        for similar in suggestions["similar_tickets"]:
            assert {"ticket_id", "issue_type", "category", "status"} <= set(similar)
            assert similar["ticket_id"] in (mobile["id"],)  # only the caller's own

        # Autonomous Action History
        history = user.ok("GET", f"/tickets/{resolved['id']}/action-history/")
        entry = history["action_history"][0]
        assert {
            "id",
            "action_type",
            "executed_at",
            "confidence_score",
            "rollback_possible",
            "rolled_back",
            "rollback_reason",
        } <= set(entry)
        assert entry["action_type"] == "AUTO_RESOLVE"

        # header bell: the follow-up of the auto-resolution arrives, then is marked read
        bell = wait_until(lambda: user.ok("GET", "/auth/notifications/"), timeout=60)
        assert {"id", "is_read", "title", "message", "type", "time", "link"} <= set(bell[0])
        assert bell[0]["is_read"] is False
        marked = user.call("PATCH", f"/auth/notifications/{bell[0]['id']}/read/")
        assert marked.status_code == 200
        assert user.ok("GET", "/auth/notifications/")[0]["is_read"] is True
        assert user.call("POST", "/auth/notifications/read-all/").status_code == 200
        assert all(n["is_read"] for n in user.ok("GET", "/auth/notifications/"))

        # "How did we do?": on the resolved ticket, then on one with no resolution (409, a sentence)
        feedback = {"resolution_confirmed": True, "satisfaction_score": 5, "feedback_text": "great"}
        user.ok("POST", f"/tickets/{resolved['id']}/resolution-feedback/", feedback)
        unanalysed = user.ok("POST", "/tickets/", {**form, "issue_type": "Monitor flickers"}, status=201)
        user.refused(
            "POST",
            f"/tickets/{unanalysed['id']}/resolution-feedback/",
            409,
            {"resolution_confirmed": False, "satisfaction_score": 0, "feedback_text": ""},
        )

        # status menu: an owner may close; anything else is staff's (403 with a sentence)
        user.refused("POST", f"/tickets/{mobile['id']}/status/", 403, {"status": "in-progress"})
        closed = user.ok("POST", f"/tickets/{mobile['id']}/status/", {"status": "closed"})
        assert closed["status"] == "closed"

        # the staff panel's recommendations are staff's
        user.refused("GET", "/tickets/agent/recommendations/", 403)


def test_another_users_view_shows_nothing_of_the_first_users(stack: Stack) -> None:
    running = host(stack)
    with stack.client(running) as api:
        alice, bob = login(api, "alice@example.com"), login(api, "bob@example.com")
        theirs = bob.ok(
            "POST", "/tickets/", {"user": "bob@example.com", **PASSWORD_TICKET, "status": "new"}, status=201
        )
        mine = alice.ok("POST", "/tickets/", {"user": "alice@example.com", **PASSWORD_TICKET}, status=201)
        assert [t["id"] for t in alice.ok("GET", "/tickets/list/?limit=100")] == [mine["id"]]
        assert alice.call("GET", "/tickets/list/?limit=100&user=bob%40example.com").status_code == 400
        for method, path, body in (
            ("GET", f"/tickets/{theirs['id']}/", None),
            ("GET", f"/tickets/{theirs['id']}/agent-status/", None),
            ("GET", f"/tickets/{theirs['id']}/ai-suggestions/", None),
            ("POST", f"/tickets/{theirs['id']}/status/", {"status": "closed"}),
            ("POST", f"/tickets/{theirs['id']}/process/", {"force": True}),
        ):
            alice.refused(method, path, 404, body)
        similar = alice.ok("GET", f"/tickets/{mine['id']}/ai-suggestions/")["similar_tickets"]
        assert theirs["id"] not in {s["ticket_id"] for s in similar}
        assert bob.ok("GET", f"/tickets/{theirs['id']}/")["status"] == "new"


def test_staff_and_admin_rows(stack: Stack) -> None:
    running = host(stack, DEV_ADMIN_EMAILS="boss@example.com")
    with stack.client(running) as api:
        user, admin = login(api, "alice@example.com"), login(api, "boss@example.com")
        staff = App(api, token("sam@example.com", "staff"))
        assert admin.ok("GET", "/auth/profile/")["is_staff"] is True

        # Pause the agent (admin): the next analysis is deferred, and shows as a recommendation.
        controls = api.put(
            "/agent/controls/",
            headers={"Authorization": f"Bearer {admin.access}", "Content-Type": "application/json"},
            content=json.dumps({"enabled": False, "reason": "contract test"}),
        )
        assert controls.status_code == 200, controls.text
        ticket = user.ok("POST", "/tickets/", {"user": "alice@example.com", **PASSWORD_TICKET}, status=201)
        user.ok("POST", f"/tickets/{ticket['id']}/process/", {"force": True}, status=202)
        wait_until(lambda: user.ok("GET", f"/tickets/{ticket['id']}/")["status"] == "open")

        for app in (staff, admin):
            recommendations = app.ok("GET", "/tickets/agent/recommendations/")
            assert [r["ticket_id"] for r in recommendations] == [ticket["id"]]
            item = recommendations[0]
            assert {"ticket_id", "title", "created_at", "category", "priority", "recommendations"} <= set(
                item
            )
            rec = item["recommendations"][0]
            assert rec["type"] in ("high_confidence_solution", "suggested_solution", "similar_tickets")
            assert rec["message"] and rec["confidence"] is not None

        # Staff see the ticket, its insights and every ticket in the legacy list.
        assert ticket["id"] in {t["id"] for t in staff.ok("GET", "/tickets/list/?limit=100")}
        assert staff.ok("GET", f"/tickets/{ticket['id']}/agent-status/")["agent_processed"] is True
        staff.ok("GET", f"/tickets/{ticket['id']}/ai-suggestions/")

        # The status menu: staff set any status, hyphenated as the app writes it.
        moved = staff.ok("POST", f"/tickets/{ticket['id']}/status/", {"status": "in-progress"})
        assert moved["status"] == "in_progress"

        # A user's force is ignored (the ticket was processed: skipped); staff's still forces.
        assert user.ok("POST", f"/tickets/{ticket['id']}/process/", {"force": True})["status"] == "skipped"
        forced = staff.ok("POST", f"/tickets/{ticket['id']}/process/", {"force": True}, status=202)
        assert forced["status"] == "queued"


ANALYTICS_FIELDS = {
    "total_resolutions",
    "confirmed_successful",
    "confirmed_failed",
    "reopened_tickets",
    "average_satisfaction_score",
    "success_rate",
    "action_type_breakdown",
}
AGENT_PANEL_FIELDS = {
    "agent_processing_rate",
    "resolution_success_rate",
    "average_confidence_score",
    "autonomous_solutions",
}
TICKET_ANALYTICS_FIELDS = {
    "open_tickets",
    "closed_tickets",
    "avg_resolution_time_seconds",
    "tickets_per_week",
}


def test_analytics_and_rollback_rows(stack: Stack) -> None:
    """The analytics page and the dashboard (staff: every row; a user: their own ticket analytics,
    403 with a sentence elsewhere), and the rollback modal as the app sends it."""
    running = host(stack, DEV_ADMIN_EMAILS="boss@example.com")
    with stack.client(running) as api:
        user, admin = login(api, "alice@example.com"), login(api, "boss@example.com")
        staff = App(api, token("sam@example.com", "staff"))
        ticket = user.ok("POST", "/tickets/", {"user": "alice@example.com", **PASSWORD_TICKET}, status=201)
        user.ok("POST", f"/tickets/{ticket['id']}/process/", {"force": True}, status=202)
        wait_until(lambda: user.ok("GET", f"/tickets/{ticket['id']}/")["status"] == "resolved")

        # analytics page
        for app in (staff, admin):
            figures = app.ok("GET", "/tickets/resolution-analytics/")
            assert set(figures) >= ANALYTICS_FIELDS
            assert isinstance(figures["success_rate"], int | float)
            for row in figures["action_type_breakdown"]:
                assert {"autonomous_action", "total", "confirmed", "failed"} <= set(row)
        user.refused("GET", "/tickets/resolution-analytics/", 403)

        # dashboard "AI Agent Status": loaded together with the recommendations
        panel = staff.ok("GET", "/tickets/agent/analytics/")
        assert set(panel) >= AGENT_PANEL_FIELDS and panel["agent_status"] == "active"
        assert isinstance(staff.ok("GET", "/tickets/agent/recommendations/"), list)
        user.refused("GET", "/tickets/agent/analytics/", 403)

        # analytics, dashboard: staff all tickets, a user their own
        mine = user.ok("GET", "/tickets/analytics/")
        assert set(mine) >= TICKET_ANALYTICS_FIELDS and mine["scope"] == "mine"
        assert mine["open_tickets"] + mine["closed_tickets"] == 1  # alice's one ticket (resolved)
        for week in mine["tickets_per_week"]:
            assert {"week", "count"} <= set(week)
        everyone = staff.ok("GET", "/tickets/analytics/")
        assert set(everyone) >= TICKET_ANALYTICS_FIELDS and everyone["scope"] == "all"
        # a bad date is a 400 with a sentence, as JSON the app can parse
        assert (
            staff.refused("GET", "/tickets/analytics/?since=2026-02-30", 400)["errors"][0]["loc"] == "since"
        )

        # rollback modal: the Rollback button shows for everyone; only an admin may
        history = user.ok("GET", f"/tickets/{ticket['id']}/action-history/")["action_history"]
        action = next(e for e in history if e["action_type"] == "AUTO_RESOLVE")
        assert action["rollback_possible"] is True and action["rolled_back"] is False
        path = f"/tickets/actions/{action['id']}/rollback/"
        user.refused("POST", path, 403, {"reason": "it did not help"})
        staff.refused("POST", path, 403, {"reason": "it did not help"})
        admin.ok("POST", path, {"reason": "it did not help"})
        # the app reloads the history: the action shows rolled back, with the reason
        reloaded = user.ok("GET", f"/tickets/{ticket['id']}/action-history/")["action_history"]
        undone = next(e for e in reloaded if e["id"] == action["id"])
        assert undone["rolled_back"] is True and undone["rollback_reason"] == "it did not help"
        assert user.ok("GET", f"/tickets/{ticket['id']}/")["resolution"]["outcome"] == "voided"
        admin.refused("POST", path, 409, {"reason": "again"})  # already rolled back
