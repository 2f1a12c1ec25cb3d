"""Tickets over HTTP through the local host, as the web frontend uses them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket


def test_create_read_and_isolation(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        ticket = create_ticket(api, "alice", issue_type="VPN drops", category="vpn")
        assert ticket["status"] == "new"
        got = api.get(f"/tickets/{ticket['id']}", headers=bearer("alice"))  # no trailing slash
        assert got.status_code == 200 and got.json()["id"] == ticket["id"]
        hidden = api.get(
            f"/tickets/{ticket['id']}/", headers=bearer("bob") | {"Accept": "application/problem+json"}
        )
        assert hidden.status_code == 404 and hidden.headers["content-type"].startswith(
            "application/problem+json"
        )
        anonymous = api.get("/tickets/")
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
        # The web client's legacy list: a bare array (tests/e2e/test_webapp_contract_e2e.py).
        assert [t["id"] for t in api.get("/tickets/list/", headers=bearer("alice")).json()] == [ticket["id"]]
        assert api.get("/tickets/list/", headers=bearer("bob")).json() == []
        # A known path with a wrong method is 404, as on the Azure host.
        assert api.delete(f"/tickets/{ticket['id']}/", headers=bearer("alice")).status_code == 404
        assert api.delete("/tickets/", headers=bearer("alice")).status_code == 404
        # Empty query values are dropped (Azure): `?status=` is no filter, and `&status=` repeated
        # with one value is that value.
        mine = api.get("/tickets/?status=", headers=bearer("alice"))
        assert mine.status_code == 200 and [t["id"] for t in mine.json()["results"]] == [ticket["id"]]
        new = api.get("/tickets/?status=&status=new", headers=bearer("alice"))
        assert new.status_code == 200 and len(new.json()["results"]) == 1


def test_refused_requests_get_problem_json_and_store_nothing(stack: Stack) -> None:
    host = stack.host()
    json_header = {"Content-Type": "application/json", **bearer("alice")}
    cases = [
        (b'{"issue_type": "x"', json_header, 400),
        (b'{"issue_type": 42}', json_header, 400),
        (b'{"issue_type": "x", "category": "toaster"}', json_header, 400),
        (b'{"issue_type": "x", "description": "' + b"a" * (70 * 1024) + b'"}', json_header, 413),
        (b'{"issue_type": "x"}', {"Content-Type": "text/plain", **bearer("alice")}, 415),
    ]
    with stack.client(host) as api:
        for body, headers, status in cases:
            response = api.post("/tickets/", content=body, headers=headers)
            assert response.status_code == status, (body[:40], response.text)
            problem = response.json()
            assert response.headers["content-type"].startswith("application/json")  # no Accept (SPEC §5)
            assert problem["status"] == status and problem["detail"] and problem["code"]
        everything = api.get("/tickets/", headers=bearer("sam", "staff")).json()
        assert everything["results"] == []


def test_200_concurrent_creates_over_two_hosts_get_200_distinct_ids(stack: Stack) -> None:
    hosts = [stack.host(), stack.host()]
    clients = [stack.client(h) for h in hosts]

    def create(i: int) -> int:
        return int(create_ticket(clients[i % 2], f"user{i % 7}", issue_type=f"t{i}")["id"])

    with ThreadPoolExecutor(32) as pool:
        ids = list(pool.map(create, range(200)))
    assert len(set(ids)) == 200 and min(ids) > 0
    for client in clients:
        client.close()


def test_health_is_public_and_staff_see_queues(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        assert api.get("/health").json() == {"status": "ok"}
        detailed = api.get("/health/", headers=bearer("sam", "staff")).json()
        assert detailed["storage"]["ok"] and detailed["poison"]["agent-actions-poison"] == 0
