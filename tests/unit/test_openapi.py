"""The OpenAPI document is built from, and agrees with, what the app registers."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from functions.http import OPERATIONS, Operation
from functions.ops import build_openapi, hoist, openapi_document
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
    assert listing == {"status", "assigned_team", "priority", "limit", "cursor", "mine"}


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
                    ("file", "string"),
                )
                if f"{{{name}}}" in path
            ]
            assert in_path == expected


def refs(node: Any) -> list[str]:
    return re.findall(r'"\$ref": "([^"]*)"', json.dumps(node))


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.mark.parametrize("local", [True, False], ids=["local", "deployed"])
def test_the_document_is_valid_openapi_3_1_and_every_ref_resolves_inside_it(local: bool) -> None:
    doc = openapi_document("test", local)
    validate(doc)  # OpenAPI 3.1 (with its JSON Schema 2020-12 dialect), refs resolved
    found = refs(doc)
    assert found and "$defs" not in json.dumps(doc)
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert isinstance(resolve(doc, ref), dict), ref
    # Every component is used (nothing stale), and every model an operation names is described.
    assert set(doc["components"]["schemas"]) == {r.rsplit("/", 1)[1] for r in found}


class Leaf(BaseModel):
    value: int


class Branch(BaseModel):
    leaf: Leaf
    leaves: list[Leaf] = []


class Tree(BaseModel):
    branch: Branch


def test_nested_definitions_are_hoisted_to_components_with_their_refs() -> None:
    doc = build_openapi(
        [Operation("x_tree", "trees", "POST", "user", "Plant", Tree, None, 201, Tree)], "test"
    )
    validate(doc)
    assert {"Leaf", "Branch"} <= set(doc["components"]["schemas"])
    branch = doc["components"]["schemas"]["Branch"]
    assert branch["properties"]["leaf"] == {"$ref": "#/components/schemas/Leaf"}
    # A schema written by hand (or a library) may keep its own `$defs` and `#/$defs/` refs at any depth.
    schemas: dict[str, Any] = {}
    hoisted = hoist(
        {
            "type": "object",
            "properties": {
                "a": {"$ref": "#/$defs/A"},
                "b": {"type": "array", "items": {"$ref": "#/$defs/B"}, "$defs": {"B": {"type": "string"}}},
            },
            "$defs": {
                "A": {"type": "object", "properties": {"c": {"$ref": "#/$defs/C"}}, "$defs": {"C": {}}}
            },
        },
        schemas,
    )
    assert set(schemas) == {"A", "B", "C"} and "$defs" not in json.dumps([hoisted, schemas])
    assert hoisted["properties"]["b"]["items"] == {"$ref": "#/components/schemas/B"}
    assert schemas["A"]["properties"]["c"] == {"$ref": "#/components/schemas/C"}


def test_two_different_models_with_one_name_are_refused_rather_than_one_hiding_the_other() -> None:
    def holder(name: str, kind: type) -> type[BaseModel]:
        inner = type("Inner", (BaseModel,), {"__annotations__": {"x": kind}})
        return type(name, (BaseModel,), {"__annotations__": {"inner": inner}})

    first, second, same = holder("First", int), holder("Second", str), holder("Same", int)
    ops = [
        Operation(f"x_{m.__name__}", m.__name__, "POST", "user", "S", m, None, 200, None)
        for m in (first, same)
    ]
    assert "Inner" in build_openapi(ops, "test")["components"]["schemas"]  # equal schemas share a name
    ops.append(Operation("x_second", "second", "POST", "user", "S", second, None, 200, None))
    with pytest.raises(ValueError, match="'Inner'"):
        build_openapi(ops, "test")


def test_links_lead_from_a_ticket_to_every_operation_on_it_and_from_history_to_rollback() -> None:
    doc = openapi_document("test")
    by_id = {op["operationId"]: op for ops in doc["paths"].values() for op in ops.values()}
    on_ticket = {op.name for op in OPERATIONS if "{id:int}" in op.route}
    created = doc["paths"]["/api/tickets/"]["post"]["responses"]["201"]["links"]
    assert set(created) == on_ticket  # create -> process, get, status, history, feedback
    assert created["agent_process"]["parameters"] == {"id": "$response.body#/id"}
    history = doc["paths"]["/api/tickets/{id}/action-history/"]["get"]["responses"]["200"]["links"]
    assert history["tickets_action_rollback"]["parameters"] == {
        "action_id": "$response.body#/action_history/0/id"
    }
    processed = doc["paths"]["/api/tickets/{id}/process/"]["post"]["responses"]["202"]["links"]
    assert processed["tickets_history"]["parameters"] == {"id": "$response.body#/ticket_id"}
    for ops in doc["paths"].values():
        for op in ops.values():
            for status, response in op["responses"].items():
                for link in response.get("links", {}).values():
                    target = by_id[link["operationId"]]
                    assert status.startswith("2")
                    names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                    assert set(link["parameters"]) == names, link
