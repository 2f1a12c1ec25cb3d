"""The OpenAPI document is built from, and agrees with, what the app registers."""

from __future__ import annotations

from functions.http import OPERATIONS, Operation
from functions.ops import build_openapi, openapi_document
from shared.config import Settings
from shared.container import Container, use_container
from tests.unit.http_client import REGISTERED, invoke, payload

PATH_PARAMETERS = (("id", "integer"), ("action_id", "string"), ("token", "string"), ("key", "string"))


def test_every_http_function_is_documented_with_its_method(settings: Settings) -> None:
    use_container(Container.in_memory(settings))
    try:
        response = invoke("ops_openapi")
    finally:
        use_container(None)
    doc = payload(response)
    assert response.status_code == 200 and doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    registered = set()
    for fn in REGISTERED:
        trigger = fn.get_trigger()
        if getattr(trigger, "route", None) is not None:
            path = "/api/" + trigger.route.replace(":int}", "}") + "/"
            registered |= {
                (path, str(m.value if hasattr(m, "value") else m).upper()) for m in trigger.methods
            }
    assert documented == registered
    create = doc["paths"]["/api/tickets/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["issue_type"] and body["additionalProperties"] is False
    assert "201" in create["responses"] and create["security"] == [{"bearer": []}]
    listing = {p["name"] for p in doc["paths"]["/api/tickets/"]["get"]["parameters"]}
    assert listing == {"status", "limit", "cursor", "mine"}


def test_security_follows_each_operations_declared_access() -> None:
    doc = openapi_document("test")
    for op in OPERATIONS:
        path = "/api/" + op.route.replace(":int}", "}") + "/"
        documented = doc["paths"][path][op.method.lower()]
        if op.access == "public":  # anyone; a token is optional (health shows staff more)
            assert documented["security"] == [{}, {"bearer": []}], op.name
        else:
            assert documented["security"] == [{"bearer": []}], op.name
        assert documented.get("x-required-role") == (op.access if op.access in ("staff", "admin") else None)
    assert doc["paths"]["/api/agent/controls/"]["put"]["x-required-role"] == "admin"
    # Declared `user`: an owner may close their own ticket; the service keeps the rest for staff.
    assert doc["paths"]["/api/tickets/{id}/status/"]["post"].get("x-required-role") is None
    assert doc["paths"]["/api/health/"]["get"]["security"] == [{}, {"bearer": []}]


def test_path_parameters_take_their_types_from_the_route_template() -> None:
    declared = [
        Operation("x_get", "tickets/{id:int}", "GET", "user", "Get", None, None, 200, None),
        Operation(
            "x_rollback",
            "tickets/{id:int}/rollback/{action_id}",
            "POST",
            "staff",
            "Roll back",
            None,
            None,
            200,
            None,
        ),
        Operation("x_open", "things/{slug:alpha}", "GET", "public", "Open", None, None, 200, None),
    ]
    paths = build_openapi(declared, "test")["paths"]
    assert set(paths) == {
        "/api/tickets/{id}/",
        "/api/tickets/{id}/rollback/{action_id}/",
        "/api/things/{slug}/",
    }
    rollback = paths["/api/tickets/{id}/rollback/{action_id}/"]["post"]
    assert rollback["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "action_id", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    assert rollback["security"] == [{"bearer": []}] and rollback["x-required-role"] == "staff"
    assert paths["/api/things/{slug}/"]["get"]["parameters"][0]["schema"] == {"type": "string"}
    assert paths["/api/things/{slug}/"]["get"]["security"] == [{}, {"bearer": []}]
    # The registered routes: every `{id:int}` is an integer, the rollback's `{action_id}` a string,
    # and nothing else is a path parameter.
    for path, ops in openapi_document("test")["paths"].items():
        for documented in ops.values():
            in_path = [p for p in documented.get("parameters", []) if p["in"] == "path"]
            expected = [
                {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
                for name, kind in (
                    ("id", "integer"),
                    ("action_id", "string"),
                    ("token", "string"),
                    ("key", "string"),
                )
                if f"{{{name}}}" in path
            ]
            assert in_path == expected
