"""A small set of the hostile requests through the local host and its HTTP stack (what the
in-process suite cannot see: the host's route constraints, its body handling, its headers):
refused or answered as data, never a 5xx, every error problem+json, nothing leaked."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tests.conftest import LINK_SECRET, SECRET, bearer
from tests.e2e.conftest import Stack, create_ticket
from tests.security.conftest import INJECTED_PATHS, NEVER, PROBLEM, alg_none

PRIVATE = "olive-private-host-9b1e"


def check(response: httpx.Response, *, private_ok: bool = False) -> None:
    text = response.text + repr(dict(response.headers))
    for never in [*NEVER, SECRET, LINK_SECRET]:
        assert never not in text, (never, text[:500])
    assert private_ok or PRIVATE not in text, text[:500]
    assert response.status_code < 500, (response.request.url, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["Content-Type"].split(";")[0] == PROBLEM, (
            response.request.url,
            response.headers,
        )
        assert response.json()["status"] == response.status_code


def test_hostile_requests_through_the_local_host(stack: Stack) -> None:
    host = stack.host()
    ask = {"Accept": PROBLEM}
    with stack.client(host) as api:
        owner = create_ticket(api, "olive", description=PRIVATE)
        oscar, admin = bearer("oscar") | ask, bearer("ada", "admin") | ask
        # Injection in the integer id (the host's `{id:int}` refuses it) and in string segments.
        for value in INJECTED_PATHS:
            segment = quote(value, safe="")
            for path in (
                f"/tickets/{segment}/",
                f"/tickets/{segment}/action-history/",
                f"/tickets/actions/{segment}/rollback/",
                f"/feedback/{segment}/",
            ):
                method = "POST" if path.endswith("rollback/") else "GET"
                response = api.request(method, path, headers=admin, json={} if method == "POST" else None)
                check(response, private_ok=True)
            for params in ({"status": value}, {"cursor": value}, {"mine": value}, {"limit": value}):
                check(api.get("/tickets/", headers=oscar, params=params))
                check(api.get(f"/tickets/{owner['id']}/action-history/", headers=oscar, params=params))
        # Someone else's ticket is a 404 through the host too; the owner's own is a 200.
        assert api.get(f"/tickets/{owner['id']}/", headers=oscar).status_code == 404
        assert api.get(f"/tickets/{owner['id']}/", headers=bearer("olive")).status_code == 200
        # Bodies: oversize, deeply nested, not UTF-8; a huge limit; an unsigned token.
        json_type = {"Content-Type": "application/json"}
        bodies = {
            413: b'{"issue_type": "' + b"x" * (70 * 1024) + b'"}',
            400: b'{"issue_type": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        }
        for status, body in bodies.items():
            response = api.post("/tickets/", headers=oscar | json_type, content=body)
            check(response)
            assert response.status_code == status
        response = api.post("/tickets/", headers=oscar | json_type, content=b'{"issue_type": "\xff\xfe"}')
        check(response)
        assert response.status_code == 400
        response = api.get("/tickets/", headers=oscar, params={"limit": "9" * 40})
        check(response)
        assert response.status_code == 400
        unsigned = alg_none({"sub": "ada", "roles": ["admin"], "exp": 9_999_999_999})
        response = api.get("/agent/controls/", headers={"Authorization": f"Bearer {unsigned}"} | ask)
        check(response)
        assert response.status_code == 401
        listed = api.get("/tickets/", headers=bearer("olive"), params={"mine": "true"}).json()["results"]
        assert [t["id"] for t in listed] == [owner["id"]]  # the hostile bodies created nothing
