"""Through the local host: a storage outage answers 503 problem+json within seconds, and a
careless deploy (an Azure host, no secret) refuses every call, forged tokens included."""

from __future__ import annotations

import time

from shared.auth import mint_token
from shared.config import LOCAL_DEV_SECRET
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until

PROBLEM = {"Accept": "application/problem+json"}


def test_every_request_during_a_storage_outage_is_a_quick_503_problem(stack: Stack) -> None:
    host = stack.host()
    alice, ada, sam = (
        {**PROBLEM, **bearer("alice")},
        {**PROBLEM, **bearer("ada", "admin")},
        {**PROBLEM, **bearer("sam", "staff")},
    )
    with stack.client(host) as api:
        ticket = create_ticket(api, "alice", issue_type="VPN")
        stack.stop_storage()
        calls = [
            ("GET", f"/tickets/{ticket['id']}/", None, alice),
            ("GET", "/tickets/", None, alice),
            ("GET", "/tickets/?status=new", None, sam),
            ("POST", "/tickets/", {"issue_type": "Printer"}, alice),
            ("POST", f"/tickets/{ticket['id']}/process/", None, alice),
            ("POST", f"/tickets/{ticket['id']}/status/", {"status": "open"}, sam),
            ("GET", f"/tickets/{ticket['id']}/action-history/", None, alice),
            ("PUT", "/agent/controls/", {"enabled": False, "reason": "outage drill"}, ada),
        ]
        seconds = []
        for method, path, body, headers in calls * 2:
            started = time.monotonic()
            response = api.request(method, path, json=body, headers=headers)
            seconds.append(time.monotonic() - started)
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "storage_unavailable"
            assert response.headers["retry-after"] == "5"
        print(f"outage answers: max {max(seconds):.2f} s, median {sorted(seconds)[len(seconds) // 2]:.2f} s")
        assert max(seconds) < 10  # the SDK defaults held a request for minutes
        assert api.get("/health/").status_code == 503

        stack.restart_storage()  # empty: in memory, the tables are gone; the app creates them again
        wait_until(
            lambda: api.post("/tickets/", json={"issue_type": "Back"}, headers=alice).status_code == 201,
            timeout=30,
        )


def test_an_azure_like_host_without_a_secret_refuses_every_call(stack: Stack) -> None:
    host = stack.host(WEBSITE_SITE_NAME="resolvemeq-prod", ENVIRONMENT="", AUTH_JWT_SECRET="")
    forged = {**PROBLEM, "Authorization": "Bearer " + mint_token("mallory", ["admin"], LOCAL_DEV_SECRET)}
    with stack.client(host) as api:
        for method, path in [
            ("GET", "/agent/controls/"),
            ("PUT", "/agent/controls/"),
            ("GET", "/tickets/"),
            ("POST", "/tickets/"),
            ("GET", "/health/"),
        ] * 2:
            response = api.request(method, path, json={"enabled": False, "reason": "x"}, headers=forged)
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["code"] == "service_misconfigured" and "AUTH_JWT_SECRET" in problem["detail"]
            assert LOCAL_DEV_SECRET not in response.text
    output = host.output()
    assert output.count("settings refused") == 1 and LOCAL_DEV_SECRET not in output
