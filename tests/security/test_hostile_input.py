"""Hostile input through the function adapter, generated from the registered operations: OData
injection strings in every string path parameter and every query parameter, oversize, deeply
nested and non-UTF-8 bodies, a huge `limit`. Each is refused or answered as data (never a 5xx),
nothing leaks (the owner's ticket text stays with who may see it), and refused bodies write nothing."""

from __future__ import annotations

import pytest

from functions.http import MAX_BODY_BYTES, OPERATIONS, Operation, route_params
from tests.security.conftest import App, Deployment, assert_no_leak, call, dev_login

INJECTIONS = [
    "' or 1 eq 1",
    "' or '1' eq '1",
    "%27",
    "%2527",
    ")",
    "PartitionKey ne ''",
    "RowKey gt '' or PartitionKey ne 'x'",
    "k" * 2048,  # past Table Storage's 1 KiB key limit
    "ünï€ødé 𝄞 \u202e \u0000",
    "../../tickets",
]
HUGE_LIMITS = ["1000000000000000000000000000000", "100000", "-1", "1e309", "NaN", "0x7fffffff"]


def ids(ops: list[Operation]) -> list[str]:
    return [op.name for op in ops]


def admitted(op: Operation) -> str:
    """The least identity the route admits; the owner for a user route (they see their ticket)."""
    return {"public": "owner", "user": "owner", "staff": "staff", "admin": "admin"}[op.access]


def fingerprint(app: App) -> tuple[object, ...]:
    """What a refused request must leave as it was."""
    c = app.container
    tickets = c.tickets.list_all(None, 100, None).results
    return (len(tickets), [(t.id, t.version) for t in tickets], c.controls.current().version)


WITH_TEXT = [
    op for op in OPERATIONS if op.query or any(kind == "string" for kind in route_params(op.route).values())
]


@pytest.mark.parametrize("op", WITH_TEXT, ids=ids(WITH_TEXT))
def test_injection_strings_in_every_string_path_and_query_parameter(
    op: Operation, deployment: Deployment, app: App
) -> None:
    strings = [name for name, kind in route_params(op.route).items() if kind == "string"]
    queries = list(op.query.model_fields) if op.query else []
    for who in ("other", admitted(op)):
        headers = deployment.identity(who)
        for value in INJECTIONS:
            for name in strings:
                response = call(op, headers, app.ticket_id, route={name: value})
                assert_no_leak(response, may_see_ticket=who != "other", dev_login=dev_login(op, deployment))
            for name in queries:
                response = call(op, headers, app.ticket_id, params={name: value})
                assert_no_leak(response, may_see_ticket=who != "other", dev_login=dev_login(op, deployment))
                # An injected filter never widens a listing to someone else's ticket.
                if who == "other":
                    assert b"olive-private" not in response.get_body()


WITH_LIMIT = [op for op in OPERATIONS if op.query and "limit" in op.query.model_fields]


@pytest.mark.parametrize("op", WITH_LIMIT, ids=ids(WITH_LIMIT))
def test_a_huge_or_malformed_limit_is_a_400(op: Operation, deployment: Deployment, app: App) -> None:
    for value in HUGE_LIMITS:
        response = call(op, deployment.identity(admitted(op)), app.ticket_id, params={"limit": value})
        assert_no_leak(response, may_see_ticket=True)
        assert response.status_code == 400, (value, response.get_body())


def nested(depth: int) -> bytes:
    return b'{"issue_type": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE_BODIES = {
    # (body, content type, status on a JSON route, on the one-click answer route: a form or JSON)
    "oversize": (b'{"issue_type": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}', "application/json", 413, 413),
    "oversize_form": (
        b"feedback_text=" + b"x" * (MAX_BODY_BYTES + 1),
        "application/x-www-form-urlencoded",
        413,
        413,
    ),
    "nested_10000": (nested(10_000), "application/json", 400, 400),
    "nested_objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json", 400, 400),
    "not_utf8": (b'{"issue_type": "\xff\xfe\xfd", "reason": "\xc3\x28"}', "application/json", 400, 400),
    "not_utf8_form": (
        b"feedback_text=\xff\xfe&satisfaction_score=5",
        "application/x-www-form-urlencoded",
        415,
        400,
    ),
    "utf16": ('{"issue_type": "x"}'.encode("utf-16"), "application/json", 400, 400),
}
WITH_BODY = [op for op in OPERATIONS if op.body]


@pytest.mark.parametrize("op", WITH_BODY, ids=ids(WITH_BODY))
@pytest.mark.parametrize("kind", HOSTILE_BODIES, ids=list(HOSTILE_BODIES))
def test_oversize_nested_and_non_utf8_bodies_are_refused_and_write_nothing(
    op: Operation, kind: str, deployment: Deployment, app: App
) -> None:
    body, content_type, json_status, form_status = HOSTILE_BODIES[kind]
    form = op.body is not None and op.body.__name__.endswith("Form")
    before = fingerprint(app)
    response = call(
        op, deployment.identity(admitted(op)), app.ticket_id, body=body, content_type=content_type
    )
    assert_no_leak(response, may_see_ticket=True, dev_login=dev_login(op, deployment))
    if not dev_login(op, deployment) and response.status_code != 404:  # 404: an unknown link token
        assert response.status_code == (form_status if form else json_status), (
            kind,
            response.get_body()[:300],
        )
    assert fingerprint(app) == before
