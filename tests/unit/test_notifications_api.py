"""`GET /api/notifications/` and the web client's `/api/auth/notifications/`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.http import OPERATIONS
from shared.container import Container
from shared.domain.models import Notification, NotificationKind
from shared.storage.keys import notification_row
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROUTES = ["notifications_list", "notifications_list_web"]


def add(c: Container, n: int, user: str | None = "alice", minutes: int = 0) -> None:
    c.notifications.add(
        Notification(
            id=f"followup-{n}-2",
            user=user,
            kind=NotificationKind.FOLLOWUP if user else NotificationKind.REOPENED,
            ticket_id=n,
            title="Is everything still working?",
            message=f"Ticket {n}",
            created_at=NOW + timedelta(minutes=minutes),
            links={"ticket": f"/api/tickets/{n}/"},
        )
    )


def listed(name: str, user: dict[str, str], **params: str) -> list[str]:
    response = invoke(name, headers=user, params=params)
    assert response.status_code == 200, response.get_body()
    body = payload(response)
    return [n["id"] for n in (body if isinstance(body, list) else body["results"])]


def test_both_routes_are_declared_for_any_signed_in_user() -> None:
    declared = {op.name: (op.route, op.method, op.access) for op in OPERATIONS if op.name in ROUTES}
    assert declared == {
        "notifications_list": ("notifications", "GET", "user"),
        "notifications_list_web": ("auth/notifications", "GET", "user"),
    }


def test_a_user_reads_their_own_newest_first_and_nobody_elses(container: Container) -> None:
    for n in range(3):
        add(container, n, minutes=n)
    add(container, 7, user="bob")
    add(container, 8, user=None)
    assert listed("notifications_list", bearer("alice")) == ["followup-2-2", "followup-1-2", "followup-0-2"]
    assert listed("notifications_list", bearer("bob")) == ["followup-7-2"]
    assert listed("notifications_list", bearer("carol")) == []
    # staff read their own by default, like anyone
    assert listed("notifications_list", bearer("sam", "staff")) == []


def test_pages_follow_the_cursor(container: Container) -> None:
    for n in range(5):
        add(container, n, minutes=n)
    first = payload(invoke("notifications_list", headers=bearer("alice"), params={"limit": "2"}))
    assert [n["id"] for n in first["results"]] == ["followup-4-2", "followup-3-2"]
    second = payload(
        invoke("notifications_list", headers=bearer("alice"), params={"cursor": first["next_cursor"]})
    )
    assert [n["id"] for n in second["results"]] == ["followup-2-2", "followup-1-2", "followup-0-2"]
    assert second["next_cursor"] is None
    assert first["results"][0] == {
        "id": "followup-4-2",
        "kind": "followup",
        "ticket_id": 4,
        "title": "Is everything still working?",
        "message": "Ticket 4",
        "created_at": "2026-11-28T12:04:00Z",
        "links": {"ticket": "/api/tickets/4/"},
        "read": False,
    }  # the recipient is not repeated


def test_staff_read_the_staff_notices_and_a_user_asking_gets_403(container: Container) -> None:
    add(container, 8, user=None)
    add(container, 9, user="staff")  # a user named "staff" owns nothing of the staff's
    assert listed("notifications_list", bearer("sam", "staff"), scope="staff") == ["followup-8-2"]
    assert listed("notifications_list", bearer("ada", "admin"), scope="staff") == ["followup-8-2"]
    for user in ("alice", "staff", "~staff"):
        response = invoke("notifications_list", headers=bearer(user), params={"scope": "staff"})
        assert response.status_code == 403 and payload(response)["code"] == "forbidden"
    assert listed("notifications_list", bearer("staff")) == ["followup-9-2"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "12"},
        {"cursor": "0000000000000000-x"},
        {"cursor": "00000000000000000-a b"},
        {"cursor": "00000000000000000-x' or PartitionKey ne '"},
        {"scope": "everyone"},
        {"user": "bob"},
    ],
)
@pytest.mark.parametrize("route", ROUTES)
def test_bad_query_parameters_are_400(container: Container, route: str, params: dict[str, str]) -> None:
    add(container, 1, user="bob")
    response = invoke(route, headers=bearer("alice"), params=params)
    assert response.status_code == 400, params
    assert payload(response)["code"] == "validation_error" and payload(response)["errors"]


def test_an_empty_parameter_is_no_parameter(container: Container) -> None:
    add(container, 1)
    assert listed("notifications_list", bearer("alice"), cursor="", limit="", scope="") == ["followup-1-2"]


def test_the_web_client_gets_a_bare_array_in_its_shape(container: Container) -> None:
    for n in range(3):
        add(container, n, minutes=n)
    response = invoke("notifications_list_web", headers=bearer("alice"), params={"limit": "2"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = payload(response)
    assert body[0] == {
        "id": notification_row(datetime(2026, 11, 28, 12, 2, tzinfo=UTC), "followup-2-2"),
        "is_read": False,
        "title": "Is everything still working?",
        "message": "Ticket 2",
        "type": "followup",
        "time": "2026-11-28T12:02:00Z",
        "link": "/api/tickets/2/",
    }
    cursor = response.headers["X-Next-Cursor"]
    rest = invoke("notifications_list_web", headers=bearer("alice"), params={"cursor": cursor})
    assert [n["id"].split("-", 1)[1] for n in payload(rest)] == ["followup-0-2"]
    assert "X-Next-Cursor" not in rest.headers
