"""The authorization matrix: every registered operation (functions/http.py OPERATIONS, so a new
route is in it by construction) x every bad token and every identity, in both deployments (HS256
dev secret; RS256-only from a JWKS), in-process through the function adapter.

Expected: a protected route answers 401 to every bad token; a caller below the declared role
gets 403; a ticket the caller may not see is 404 (never 403: its existence is not revealed);
public routes treat a bad token as no token. Nothing leaks, nothing is 5xx."""

from __future__ import annotations

import json

import pytest

from functions.http import OPERATIONS, Operation
from tests.security.conftest import (
    BAD_TOKENS,
    BODIES,
    IDENTITIES,
    App,
    Deployment,
    assert_no_leak,
    call,
    dev_login,
)

RANK = {"user": 0, "staff": 1, "admin": 2}
ROLE_OF = {"other": "user", "owner": "user", "staff": "staff", "admin": "admin"}


def ids(ops: list[Operation]) -> list[str]:
    return [op.name for op in ops]


def on_ticket(op: Operation) -> bool:
    """The route names a ticket by id: who may not see it gets 404."""
    return "{id" in op.route


def test_every_body_model_has_an_example() -> None:
    assert {op.body.__name__ for op in OPERATIONS if op.body} <= set(BODIES)


@pytest.mark.parametrize("op", OPERATIONS, ids=ids(OPERATIONS))
def test_bad_tokens_are_401_on_protected_routes_and_anonymous_on_public_ones(
    op: Operation, deployment: Deployment, app: App
) -> None:
    anonymous = call(op, {}, app.ticket_id)
    assert_no_leak(anonymous, dev_login=dev_login(op, deployment))
    for kind in BAD_TOKENS:
        response = call(op, deployment.bad(kind), app.ticket_id)
        assert_no_leak(response, dev_login=dev_login(op, deployment))
        if op.access == "public":
            assert response.status_code == anonymous.status_code, (kind, response.get_body())
        else:
            assert response.status_code == 401, (kind, response.status_code, response.get_body())
            assert json.loads(response.get_body())["code"] == "not_authenticated"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if op.access != "public":
        assert anonymous.status_code == 401


@pytest.mark.parametrize("op", OPERATIONS, ids=ids(OPERATIONS))
def test_each_identity_gets_what_its_role_and_ownership_allow(
    op: Operation, deployment: Deployment, app: App
) -> None:
    anonymous_status = call(op, {}, app.ticket_id).status_code
    for who in IDENTITIES:
        response = call(op, deployment.identity(who), app.ticket_id)
        role = ROLE_OF[who]
        sees_ticket = who != "other"
        assert_no_leak(response, may_see_ticket=sees_ticket, dev_login=dev_login(op, deployment))
        status = response.status_code
        if op.access == "public":
            # Anyone: a good token may show more (health, the dev login's profile), never a refusal.
            assert status != 403 and (status == anonymous_status or anonymous_status == 401), (who, status)
        elif RANK[role] < RANK[op.access]:
            assert status == 403, (who, status, response.get_body())
        elif on_ticket(op) and not sees_ticket:
            assert status == 404, (who, status, response.get_body())
        elif on_ticket(op):  # admitted, and the ticket is visible: the handler's own answer
            assert status not in (401, 403, 404), (who, status, response.get_body())
        else:  # admitted: the handler's own answer (an action id that does not exist is a 404)
            assert status not in (401, 403), (who, status, response.get_body())
        if op.name == "tickets_get" and sees_ticket:
            assert json.loads(response.get_body())["description"] == "olive-private-4f7c2a"
