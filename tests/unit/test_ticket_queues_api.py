"""Work queues through the list routes (`GET /api/tickets/`, `/api/tickets/list/`), in memory:
the filters each kind of caller may combine, their own tickets only for users, cursors."""

from __future__ import annotations

import pytest

from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

ALICE, BOB, STAFF = bearer("alice"), bearer("bob"), bearer("sam", "staff")
PROBLEM = {"Accept": "application/problem+json"}

pytestmark = pytest.mark.usefixtures("container")


def create(headers: dict[str, str]) -> int:
    response = invoke("tickets_create", "POST", json_body={"issue_type": "VPN drops"}, headers=headers)
    assert response.status_code == 201
    return int(payload(response)["id"])


def move(ticket: int, **body: str) -> None:
    response = invoke("tickets_status", "POST", json_body=body, headers=STAFF, route={"id": str(ticket)})
    assert response.status_code == 200, response.get_body()


def listed(headers: dict[str, str], **params: str) -> list[int]:
    response = invoke("tickets_list", headers=headers, params=params)
    assert response.status_code == 200, response.get_body()
    return [t["id"] for t in payload(response)["results"]]


def refused(name: str, headers: dict[str, str], **params: str) -> str:
    response = invoke(name, headers=headers | PROBLEM, params=params)
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    return str(payload(response)["detail"])


def test_staff_list_each_queue_newest_first() -> None:
    a, b, c, d = create(ALICE), create(BOB), create(ALICE), create(BOB)
    move(a, status="escalated", priority="high")
    move(b, status="escalated", assigned_team="network")
    move(c, status="assigned", assigned_team="network")
    move(d, status="escalated", assigned_team="network", priority="high")
    assert listed(STAFF, status="escalated") == [d, b, a]
    assert listed(STAFF, status="escalated", assigned_team="network") == [d, b]
    assert listed(STAFF, status="escalated", priority="high") == [d, a]
    assert listed(STAFF, status="assigned", assigned_team="network") == [c]
    assert listed(STAFF, status="in-progress") == []  # the web client's spelling
    assert listed(STAFF) == [d, c, b, a]


def test_users_list_their_own_tickets_by_status_only() -> None:
    mine, theirs = create(ALICE), create(BOB)
    move(theirs, status="escalated")
    move(mine, status="escalated")
    assert listed(ALICE, status="escalated") == [mine]
    assert listed(BOB, status="escalated") == [theirs]
    assert listed(ALICE, status="new") == []
    assert listed(STAFF, status="escalated", mine="true") == []  # staff's own tickets: none
    for params in ({"assigned_team": "network"}, {"priority": "high"}):
        detail = refused("tickets_list", ALICE, status="escalated", **params)
        assert "status only" in detail


@pytest.mark.parametrize(
    "params",
    [
        {"assigned_team": "network"},
        {"priority": "high"},
        {"assigned_team": "network", "priority": "high"},
        {"status": "escalated", "assigned_team": "network", "priority": "high"},
    ],
)
def test_combinations_no_queue_keeps_are_400_naming_the_supported_ones(params: dict[str, str]) -> None:
    for name in ("tickets_list", "tickets_list_alias"):
        detail = refused(name, STAFF, **params)
        assert "status and assigned_team" in detail and "status and priority" in detail


def test_a_queue_pages_with_its_own_cursor_and_refuses_any_other() -> None:
    ids = [create(ALICE) for _ in range(5)]
    for ticket in ids:
        move(ticket, status="escalated")
    pages, cursor = [], None
    while True:
        params = {"status": "escalated", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = payload(invoke("tickets_list", headers=STAFF, params=params))
        pages.append([t["id"] for t in page["results"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [ids[::-1][:2], ids[::-1][2:4], ids[::-1][4:]]
    first = payload(invoke("tickets_list", headers=STAFF, params={"status": "escalated", "limit": "2"}))
    good = first["next_cursor"]
    for params in (
        {"status": "escalated", "cursor": good[:-1] + ("A" if good[-1] != "A" else "B")},
        {"status": "closed", "cursor": good},  # another queue's
        {"cursor": good},  # the unfiltered list's cursor is a ticket key
        {"status": "escalated", "cursor": "000000000001"},
        {"status": "escalated", "cursor": "has spaces"},
    ):
        refused("tickets_list", STAFF, **params)
    # A user cannot reuse staff's cursor of the same status to see others' tickets.
    refused("tickets_list", ALICE, status="escalated", cursor=good)


def test_the_web_clients_list_takes_the_filters_and_pages_by_header() -> None:
    ids = [create(ALICE) for _ in range(3)]
    for ticket in ids:
        move(ticket, status="escalated", assigned_team="desk")
    response = invoke("tickets_list_alias", headers=STAFF, params={"status": "escalated", "limit": "2"})
    assert [t["id"] for t in payload(response)] == ids[::-1][:2]
    cursor = response.headers["X-Next-Cursor"]
    rest = invoke(
        "tickets_list_alias",
        headers=STAFF,
        params={"status": "escalated", "limit": "2", "cursor": cursor},
    )
    assert [t["id"] for t in payload(rest)] == ids[:1] and "X-Next-Cursor" not in rest.headers
    mine = invoke("tickets_list_alias", headers=ALICE, params={"status": "escalated"})
    assert [t["id"] for t in payload(mine)] == ids[::-1]
    assert payload(invoke("tickets_list_alias", headers=BOB, params={"status": "escalated"})) == []
