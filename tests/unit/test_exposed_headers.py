"""Headers the web app may read are named in Access-Control-Expose-Headers by the function itself:
the CORS layer in front (Core Tools, the Functions host, App Service) exposes none of its own."""

from __future__ import annotations

import azure.functions as func

from functions.http import exposed
from shared.config import Settings
from shared.container import Container
from tests.conftest import SECRET, bearer
from tests.helpers import installed
from tests.unit.http_client import invoke, payload


def test_a_response_names_exactly_the_readable_headers_it_carries() -> None:
    bare = exposed(func.HttpResponse("{}"))
    assert "Access-Control-Expose-Headers" not in bare.headers
    some = exposed(
        func.HttpResponse("[]", headers={"X-Next-Cursor": "1", "Retry-After": "5", "X-Other": "x"})
    )
    assert some.headers["Access-Control-Expose-Headers"] == "X-Next-Cursor, Retry-After"
    own = exposed(func.HttpResponse("[]", headers={"Retry-After": "5", "Access-Control-Expose-Headers": "A"}))
    assert own.headers["Access-Control-Expose-Headers"] == "A"  # a function's own choice is kept


def test_the_throttle_headers_of_a_create_and_of_a_429_are_exposed() -> None:
    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://", AGENT_ACTIONS_THROTTLE_RATE="1/minute"
    )
    with installed(Container.in_memory(settings)):
        created = invoke("tickets_create", "POST", json_body={"issue_type": "VPN"}, headers=bearer("alice"))
        assert created.status_code == 201 and created.headers["RateLimit-Limit"]
        assert (
            created.headers["Access-Control-Expose-Headers"]
            == "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
        )
        ticket = {"id": str(payload(created)["id"])}
        invoke("agent_process", "POST", headers=bearer("alice"), route=ticket)
        refused = invoke("agent_process", "POST", headers=bearer("alice"), route=ticket)
        assert refused.status_code == 429
        names = {n.strip() for n in refused.headers["Access-Control-Expose-Headers"].split(",")}
        assert "Retry-After" in names and {h for h in names if refused.headers.get(h)} == names
