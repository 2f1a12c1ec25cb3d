"""The tickets API through the real function adapters, with in-memory storage."""

from __future__ import annotations

import json

import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.storage.memory import InMemoryTicketRepository
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

ALICE, BOB, STAFF = bearer("alice"), bearer("bob"), bearer("sam", "staff")
PROBLEM = {"Accept": "application/problem+json"}
JSON = {"Content-Type": "application/json"}


pytestmark = pytest.mark.usefixtures("container")  # the in-memory one of tests/conftest.py


def create(headers: dict[str, str], **fields: object) -> dict:
    response = invoke(
        "tickets_create", "POST", json_body={"issue_type": "VPN drops", **fields}, headers=headers
    )
    assert response.status_code == 201, response.get_body()
    return payload(response)


def stored_count(c: Container) -> int:
    return len(c.tickets.list_all(None, 100, None).results)


def test_a_created_ticket_is_new_and_owned_by_the_caller() -> None:
    ticket = create(ALICE, description="Drops every 5 minutes", category="vpn", tags=["remote"])
    assert ticket["status"] == "new" and ticket["user"] == "alice" and ticket["category"] == "vpn"
    assert ticket["id"] > 0 and ticket["resolution"] is None and ticket["agent"] is None
    got = invoke("tickets_get", headers=ALICE, route={"id": str(ticket["id"])})
    assert got.status_code == 200 and payload(got) == ticket


def test_another_user_gets_404_but_staff_see_it() -> None:
    ticket = create(ALICE)
    hidden = invoke("tickets_get", headers=BOB | PROBLEM, route={"id": str(ticket["id"])})
    assert hidden.status_code == 404 and hidden.mimetype == "application/problem+json"
    missing = invoke("tickets_get", headers=BOB, route={"id": "999999"})
    assert payload(hidden)["detail"].replace(str(ticket["id"]), "X") == payload(missing)["detail"].replace(
        "999999", "X"
    )
    assert invoke("tickets_get", headers=STAFF, route={"id": str(ticket["id"])}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic abc"},
        bearer("x") | {"Authorization": ""},
    ],
)
def test_requests_without_a_valid_token_get_401(headers: dict[str, str], container: Container) -> None:
    response = invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored_count(container) == 0


def test_an_expired_or_foreign_token_gets_401(settings: Settings) -> None:
    from shared.auth import mint_token

    expired = mint_token("alice", [], settings.auth_jwt_secret, ttl_seconds=-10)
    forged = mint_token("alice", ["admin"], "another-secret-0123456789abcdef0123456789")
    for tok in (expired, forged):
        response = invoke("tickets_list", headers={"Authorization": f"Bearer {tok}"})
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"issue_type": "x",', "application/json", 400, "validation_error"),
        (b'{"issue_type": 5}', "application/json", 400, "validation_error"),
        (b'{"issue_type": "x", "category": "bogus"}', "application/json", 400, "validation_error"),
        (b'{"issue_type": "x", "status": "resolved"}', "application/json", 400, "validation_error"),
        (b'{"issue_type": ""}', "application/json", 400, "validation_error"),
        (
            b'{"issue_type": "x", "tags": ["a"] }' + b" " * (70 * 1024),
            "application/json",
            413,
            "payload_too_large",
        ),
        (b'{"issue_type": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b"[]", "application/json", 400, "validation_error"),
    ],
)
def test_bad_input_gets_problem_json_and_writes_nothing(
    body: bytes, content_type: str, status: int, code: str, container: Container
) -> None:
    response = invoke("tickets_create", "POST", body=body, headers=ALICE | {"Content-Type": content_type})
    assert response.status_code == status
    assert response.mimetype == "application/json"  # no Accept: the problem as plain JSON (SPEC §5)
    problem = payload(response)
    assert problem["status"] == status and problem["code"] == code and problem["detail"]
    if status == 400:
        assert problem["errors"] and all({"loc", "msg"} <= set(e) for e in problem["errors"])
        assert "pydantic" not in response.get_body().decode()
    assert stored_count(container) == 0


def test_unknown_fields_are_named_in_the_errors() -> None:
    response = invoke("tickets_create", "POST", json_body={"issue_type": "x", "prio": 1}, headers=ALICE)
    assert payload(response)["errors"] == [{"loc": "prio", "msg": "Unknown field."}]


def test_field_limits_are_enforced() -> None:
    for fields in (
        {"issue_type": "x" * 101},
        {"issue_type": "x", "description": "d" * 10_001},
        {"issue_type": "x", "tags": ["t"] * 21},
        {"issue_type": "x", "tags": ["t" * 51]},
    ):
        assert invoke("tickets_create", "POST", json_body=fields, headers=ALICE).status_code == 400


def test_users_list_only_their_own_tickets_and_staff_list_all() -> None:
    mine = [create(ALICE)["id"] for _ in range(3)]
    theirs = create(BOB)["id"]
    listed = payload(invoke("tickets_list", headers=ALICE))
    assert [t["id"] for t in listed["results"]] == mine[::-1] and listed["next_cursor"] is None
    everything = payload(invoke("tickets_list_alias", headers=STAFF))  # the web client's bare array
    assert {t["id"] for t in everything} == {*mine, theirs}
    own = payload(invoke("tickets_list", headers=STAFF, params={"mine": "true"}))
    assert own["results"] == []


def test_listing_pages_with_a_cursor_and_filters_by_status() -> None:
    ids = [create(ALICE)["id"] for _ in range(5)]
    first = payload(invoke("tickets_list", headers=ALICE, params={"limit": "2"}))
    second = payload(
        invoke("tickets_list", headers=ALICE, params={"limit": "2", "cursor": first["next_cursor"]})
    )
    assert [t["id"] for t in first["results"] + second["results"]] == ids[::-1][:4]
    none_open = payload(invoke("tickets_list", headers=ALICE, params={"status": "open"}))
    assert none_open["results"] == []


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"status": "done"}, {"cursor": "../"}, {"x": "1"}],
)
def test_bad_list_parameters_get_400(params: dict[str, str]) -> None:
    response = invoke("tickets_list", headers=ALICE, params=params)
    assert response.status_code == 400 and payload(response)["errors"]


def test_staff_status_change_is_audited_as_a_human_action(container: Container) -> None:
    ticket = create(ALICE)
    response = invoke(
        "tickets_status",
        "POST",
        json_body={"status": "in_progress", "reason": "on it", "assigned_team": "network"},
        headers=STAFF,
        route={"id": str(ticket["id"])},
    )
    assert response.status_code == 200
    changed = payload(response)
    assert changed["status"] == "in_progress" and changed["assigned_team"] == "network"
    [entry] = container.tickets.history(ticket["id"], 10, None).results
    assert entry.action_type == "STATUS_CHANGE" and entry.executed_by == "sam"
    assert entry.before_state["status"] == "new" and entry.after_state["status"] == "in_progress"
    assert entry.agent_reasoning == "on it"


def test_users_cannot_change_status_except_closing_their_own() -> None:
    ticket = create(ALICE)
    response = invoke(
        "tickets_status",
        "POST",
        json_body={"status": "resolved"},
        headers=ALICE,
        route={"id": str(ticket["id"])},
    )
    assert response.status_code == 403
    assert payload(invoke("tickets_get", headers=ALICE, route={"id": str(ticket["id"])}))["status"] == "new"


def test_status_change_validates_and_404s() -> None:
    ticket = create(ALICE)
    bad = invoke(
        "tickets_status", "POST", json_body={"status": "gone"}, headers=STAFF, route={"id": str(ticket["id"])}
    )
    assert bad.status_code == 400
    missing = invoke(
        "tickets_status", "POST", json_body={"status": "open"}, headers=STAFF, route={"id": "424242"}
    )
    assert missing.status_code == 404


def test_an_unexpected_error_gives_a_generic_500(settings: Settings) -> None:
    class Exploding(InMemoryTicketRepository):
        def get(self, ticket_id: int) -> None:
            raise RuntimeError("secret connection string AccountKey=abc")

    use_container(Container.in_memory(settings, tickets=Exploding()))
    response = invoke("tickets_get", headers=ALICE, route={"id": "1"})
    assert response.status_code == 500
    assert "AccountKey" not in response.get_body().decode() and payload(response)["code"] == "internal_error"


def test_health_is_public_and_details_are_for_staff() -> None:
    assert payload(invoke("ops_health")) == {"status": "ok"}
    detailed = payload(invoke("ops_health", headers=STAFF))
    assert detailed["status"] == "ok" and "version" in detailed
    assert detailed["agent"] == {
        "status": "active",
        "enabled": True,
        "mode": "autonomous",
        "rollout_percent": 100,
        "reason": "",
    }


def test_action_history_is_newest_first_paged_and_private(container: Container) -> None:
    ticket = create(ALICE)
    for status in ("open", "in_progress", "escalated"):
        invoke(
            "tickets_status",
            "POST",
            json_body={"status": status},
            headers=STAFF,
            route={"id": str(ticket["id"])},
        )
    route = {"id": str(ticket["id"])}
    first = payload(invoke("tickets_history", headers=ALICE, route=route, params={"limit": "2"}))
    assert first["ticket_id"] == ticket["id"] and first["total_actions"] == 3
    assert [e["after_state"]["status"] for e in first["action_history"]] == ["escalated", "in_progress"]
    assert first["action_history"][0]["id"] == f"{ticket['id']}-4"
    rest = payload(
        invoke("tickets_history", headers=ALICE, route=route, params={"cursor": first["next_cursor"]})
    )
    assert [e["after_state"]["status"] for e in rest["action_history"]] == ["open"] and rest[
        "next_cursor"
    ] is None
    assert invoke("tickets_history", headers=BOB, route=route).status_code == 404
    assert invoke("tickets_history", headers=ALICE, route=route, params={"cursor": "x"}).status_code == 400


CONTROL_CHARACTERS = "".join(chr(i) for i in range(1, 32))


def test_a_description_of_10000_control_characters_is_stored_and_reads_back() -> None:
    description = (CONTROL_CHARACTERS * 400)[:10_000]
    ticket = create(ALICE, description=description, tags=["\x01" * 50] * 20)
    got = payload(invoke("tickets_get", headers=ALICE, route={"id": str(ticket["id"])}))
    assert got["description"] == description and got == ticket


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("issue_type", {"issue_type": "VPN \ud800"}),
        ("description", {"issue_type": "x", "description": "a\udfffb"}),
        ("tags.1", {"issue_type": "x", "tags": ["ok", "\ud83d"]}),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_field(
    field: str, body: dict[str, object], container: Container
) -> None:
    from shared.domain.models import TicketCreate

    with pytest.raises(ValueError) as refused:  # the model names the field whatever the parser
        TicketCreate.model_validate(body)
    assert ".".join(map(str, refused.value.errors()[0]["loc"])) == field  # type: ignore[attr-defined]
    raw = invoke(  # Python's json writes it as an escape, which the body parser refuses too
        "tickets_create", "POST", body=json.dumps(body).encode(), headers=ALICE | JSON
    )
    assert raw.status_code == 400 and payload(raw)["errors"]
    assert stored_count(container) == 0


def test_lone_surrogates_in_a_status_change_or_controls_reason_are_refused() -> None:
    from pydantic import ValidationError

    from shared.domain.models import ControlsUpdate, StatusChange

    for model, body, field in (
        (StatusChange, {"status": "open", "reason": "\ud800"}, "reason"),
        (StatusChange, {"status": "open", "assigned_team": "net\udc00"}, "assigned_team"),
        (ControlsUpdate, {"enabled": False, "reason": "stop \ud800"}, "reason"),
    ):
        with pytest.raises(ValidationError) as refused:
            model.model_validate(body, strict=False)
        assert [e["loc"] for e in refused.value.errors()] == [(field,)]
    ticket = create(ALICE)
    response = invoke(
        "tickets_status",
        "POST",
        body=b'{"status": "open", "reason": "\\ud800"}',
        headers=STAFF | JSON,
        route={"id": str(ticket["id"])},
    )
    assert response.status_code == 400
    assert payload(invoke("tickets_get", headers=ALICE, route={"id": str(ticket["id"])}))["status"] == "new"


@pytest.mark.parametrize(
    ("sub", "why"), [("a" * 513, "too long"), ("€" * 57, "too long"), ("x\ud800", "surrogate")]
)
def test_a_caller_id_that_cannot_be_a_key_is_refused_before_anything_is_written(
    sub: str, why: str, container: Container
) -> None:
    response = invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=bearer(sub))
    assert response.status_code == 400, why
    assert payload(response)["errors"][0]["loc"] == "user"
    assert stored_count(container) == 0


def test_the_longest_storable_caller_id_is_accepted() -> None:
    assert create(bearer("a" * 512))["user"] == "a" * 512
    assert create(bearer("€" * 56))["user"] == "€" * 56  # percent-encoded: 9 characters each


def test_ticket_creation_is_throttled_per_user(settings: Settings) -> None:
    c = Container.in_memory(settings.model_copy(update={"ticket_create_throttle_rate": "3/minute"}))
    use_container(c)
    made = [invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=ALICE) for _ in range(3)]
    assert [r.status_code for r in made] == [201] * 3
    assert [r.headers["RateLimit-Remaining"] for r in made] == ["2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" for r in made)
    refused = invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=ALICE)
    assert refused.status_code == 429 and payload(refused)["code"] == "throttled"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0" and 0 < int(refused.headers["RateLimit-Reset"]) <= 60
    assert stored_count(c) == 3  # nothing written for the refused one
    assert invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=BOB).status_code == 201


def test_an_invalid_create_does_not_use_the_quota(settings: Settings) -> None:
    c = Container.in_memory(settings.model_copy(update={"ticket_create_throttle_rate": "1/minute"}))
    use_container(c)
    for _ in range(3):
        assert (
            invoke("tickets_create", "POST", json_body={"issue_type": ""}, headers=ALICE).status_code == 400
        )
    assert invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=ALICE).status_code == 201


def test_the_create_throttle_setting_is_validated_and_defaults_to_30_per_minute() -> None:
    from pydantic import ValidationError

    from tests.conftest import SECRET

    assert Settings(AUTH_JWT_SECRET=SECRET).ticket_create_throttle_rate == "30/minute"  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(AUTH_JWT_SECRET=SECRET, TICKET_CREATE_THROTTLE_RATE="lots")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "params", [{"status": ""}, {"status": "", "cursor": "", "limit": ""}, {"mine": "", "status": ""}]
)
def test_empty_query_values_mean_no_filter(params: dict[str, str]) -> None:
    ids = [create(ALICE)["id"] for _ in range(2)]
    for name in ("tickets_list", "tickets_list_alias"):
        response = invoke(name, headers=ALICE, params=params)
        assert response.status_code == 200, response.get_body()
        body = payload(response)
        assert [t["id"] for t in (body if name == "tickets_list_alias" else body["results"])] == ids[::-1]
    history = invoke("tickets_history", headers=ALICE, route={"id": str(ids[0])}, params={"cursor": ""})
    assert history.status_code == 200


@pytest.mark.parametrize("sub", ["system", "autonomous_agent", " System ", "AUTONOMOUS_AGENT"])
def test_a_token_naming_the_agent_or_the_system_is_refused(sub: str) -> None:
    """History and audit name the agent `autonomous_agent` and the system `system`: a caller
    carrying such a name (an admin's included) could pass a change of theirs for the agent's."""
    for headers in (bearer(sub), bearer(sub, "admin")):
        response = invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=headers)
        assert response.status_code == 401 and "reserved" in payload(response)["detail"]
    assert (
        invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=bearer("systems")).status_code
        == 201
    )
