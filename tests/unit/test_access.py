"""The authorization matrix, generated from the registered operations: whatever a route declares
with `@api(..., access=...)` is what the adapter enforces, before the handler reads anything."""

from __future__ import annotations

import azure.functions as func
import pytest

from functions.http import OPERATIONS, Operation, api, route_params
from shared.auth import mint_token
from shared.config import Settings
from shared.container import Container
from tests.conftest import bearer
from tests.unit.http_client import REGISTERED, invoke, payload

BY_ROLE = {"user": bearer("alice"), "staff": bearer("sam", "staff"), "admin": bearer("ada", "admin")}
RANK = ["user", "staff", "admin"]
PROTECTED = [op for op in OPERATIONS if op.access != "public"]
WITH_BODY = [op for op in PROTECTED if op.body is not None]
JSON = {"Content-Type": "application/json"}
# Each is refused by body parsing (400, 415, 413) once a caller is admitted.
BAD_BODIES = {
    "malformed": (b'{"issue_type": "x",', JSON, 400),
    "not_json": (b'{"issue_type": "x"}', {"Content-Type": "text/plain"}, 415),
    "too_large": (b'{"a": "' + b"x" * (70 * 1024) + b'"}', JSON, 413),
}

# Who may call what, written down apart from the routes: a route whose declared access changes, or a
# new route, fails here until its line is added or changed on purpose (one line per operation).
DECLARED = {
    "agent_controls_get": ("GET", "agent/controls", "admin"),
    "agent_controls_put": ("PUT", "agent/controls", "admin"),
    "agent_process": ("POST", "tickets/{id:int}/process", "user"),
    "auth_login": ("POST", "auth/login", "public"),
    "auth_profile": ("GET", "auth/profile", "public"),
    "auth_refresh": ("POST", "auth/api/token/refresh", "public"),
    # The console's static page and assets: they hold no data (tests/unit/test_console.py).
    "console_asset": ("GET", "console/{file}", "public"),
    "console_page": ("GET", "console", "public"),
    "feedback_link_answer": ("POST", "feedback/{token}", "public"),
    "feedback_link_page": ("GET", "feedback/{token}", "public"),
    "notifications_list": ("GET", "notifications", "user"),
    "notifications_list_web": ("GET", "auth/notifications", "user"),
    "notifications_mark_read": ("PATCH", "auth/notifications/{key}/read", "user"),
    "notifications_read_all": ("POST", "auth/notifications/read-all", "user"),
    "ops_health": ("GET", "health", "public"),
    "ops_openapi": ("GET", "openapi.json", "public"),
    "tickets_action_rollback": ("POST", "tickets/actions/{action_id}/rollback", "admin"),
    "tickets_agent_analytics": ("GET", "tickets/agent/analytics", "staff"),
    # Staff see every ticket's figures; a user their own (ReportService.tickets).
    "tickets_analytics": ("GET", "tickets/analytics", "user"),
    "tickets_agent_recommendations": ("GET", "tickets/agent/recommendations", "staff"),
    "tickets_agent_status": ("GET", "tickets/{id:int}/agent-status", "user"),
    "tickets_ai_suggestions": ("GET", "tickets/{id:int}/ai-suggestions", "user"),
    "tickets_create": ("POST", "tickets", "user"),
    "tickets_get": ("GET", "tickets/{id:int}", "user"),
    "tickets_history": ("GET", "tickets/{id:int}/action-history", "user"),
    "tickets_list": ("GET", "tickets", "user"),
    "tickets_list_alias": ("GET", "tickets/list", "user"),
    "tickets_resolution_analytics": ("GET", "tickets/resolution-analytics", "staff"),
    "tickets_resolution_feedback": ("POST", "tickets/{id:int}/resolution-feedback", "user"),
    # An owner may close their own ticket (the web client's status menu); anything else is staff's
    # (TicketService.change_status, tests/unit/test_webapp_calls.py).
    "tickets_status": ("POST", "tickets/{id:int}/status", "user"),
    "tickets_weekly_report": ("GET", "tickets/reports/weekly", "staff"),
}


def ids(ops: list[Operation]) -> list[str]:
    return [op.name for op in ops]


pytestmark = pytest.mark.usefixtures("container")  # the in-memory one of tests/conftest.py


def call(
    op: Operation, headers: dict[str, str] | None = None, body: bytes | None = None
) -> func.HttpResponse:
    # A path value of the declared type; the ticket does not exist, which only matters once admitted.
    route = {name: "4242" if kind == "integer" else "a1" for name, kind in route_params(op.route).items()}
    return invoke(op.name, op.method, body=body, headers=headers, route=route)


def nothing_written(c: Container) -> bool:
    controls = c.controls.current()
    return not c.tickets.list_all(None, 10, None).results and controls.version == 0


def test_every_http_function_declares_its_access() -> None:
    routed = {
        f.get_function_name() for f in REGISTERED if getattr(f.get_trigger(), "route", None) is not None
    }
    assert routed == {op.name for op in OPERATIONS}
    assert len(OPERATIONS) == len(routed)  # one declaration per function
    assert {op.access for op in OPERATIONS} == {"public", "user", "staff", "admin"}


def test_every_operation_is_declared_with_its_access() -> None:
    assert {op.name: (op.method, op.route, op.access) for op in OPERATIONS} == DECLARED


@pytest.mark.parametrize("op", PROTECTED, ids=ids(PROTECTED))
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}, {"Authorization": ""}],
    ids=["none", "garbage", "basic", "empty"],
)
def test_a_protected_operation_refuses_an_anonymous_caller_with_401(
    op: Operation, headers: dict[str, str], container: Container
) -> None:
    response = call(op, headers)
    assert response.status_code == 401 and payload(response)["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert nothing_written(container)


@pytest.mark.parametrize("op", PROTECTED, ids=ids(PROTECTED))
def test_an_expired_or_forged_token_is_401_even_with_the_right_role(
    op: Operation, settings: Settings
) -> None:
    expired = mint_token("ada", ["admin"], settings.auth_jwt_secret, ttl_seconds=-10)
    forged = mint_token("ada", ["admin"], "another-secret-0123456789abcdef0123456789")
    for token in (expired, forged):
        assert call(op, {"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("op", PROTECTED, ids=ids(PROTECTED))
def test_a_caller_below_the_declared_role_gets_403_and_at_or_above_it_is_admitted(
    op: Operation, container: Container
) -> None:
    required = RANK.index(op.access)
    for role in RANK:
        response = call(op, BY_ROLE[role])
        if RANK.index(role) < required:
            assert response.status_code == 403, role
            assert payload(response)["code"] == "forbidden" and payload(response)["detail"]
        else:  # admitted: whatever the handler says (404, 400, 200), never the adapter's refusal
            assert response.status_code not in (401, 403), (role, response.get_body())
    assert nothing_written(container)


@pytest.mark.parametrize("op", WITH_BODY, ids=ids(WITH_BODY))
@pytest.mark.parametrize("bad", BAD_BODIES, ids=list(BAD_BODIES))
def test_authentication_and_role_come_before_the_body(op: Operation, bad: str, container: Container) -> None:
    body, content_type, body_status = BAD_BODIES[bad]
    assert call(op, content_type, body).status_code == 401
    assert call(op, {"Authorization": "Bearer nonsense"} | content_type, body).status_code == 401
    required = RANK.index(op.access)
    for role in RANK[:required]:
        assert call(op, BY_ROLE[role] | content_type, body).status_code == 403, role
    # Admitted, the same body is refused for what it is: the checks above were not vacuous.
    assert call(op, BY_ROLE[op.access] | content_type, body).status_code == body_status
    assert nothing_written(container)


def test_public_operations_admit_anyone_and_treat_a_bad_token_as_anonymous() -> None:
    public = [
        op
        for op in OPERATIONS
        if op.access == "public" and not op.name.startswith(("auth_", "feedback_", "console_"))
    ]
    # the dev login: test_dev_login.py; one-click answer links: test_feedback_links.py;
    # the console: test_console.py
    assert {op.name for op in public} == {"ops_health", "ops_openapi"}
    for op in public:
        for headers in (
            {},
            {"Authorization": "Bearer nonsense"},
            {"Authorization": "Basic abc"},
            BY_ROLE["user"],
        ):
            assert call(op, headers).status_code == 200, (op.name, headers)
    for headers in ({"Authorization": "Bearer nonsense"}, BY_ROLE["user"]):
        assert payload(invoke("ops_health", headers=headers)) == {"status": "ok"}
    assert "agent" in payload(invoke("ops_health", headers=BY_ROLE["staff"]))


def test_a_route_must_declare_a_known_access_level() -> None:
    bp = func.Blueprint()
    with pytest.raises(ValueError, match="unknown access"):
        api(bp, "x_bad", "x", "GET", access="staf")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        api(bp, "x_missing", "x", "GET")  # type: ignore[call-overload]
    assert not [op for op in OPERATIONS if op.name.startswith("x_")]
