"""Operations: health (`/api/health/`) and the OpenAPI document (`/api/openapi.json`)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from http import HTTPStatus
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from functions.http import OPERATIONS, ROUTE_PARAM, Operation, PublicCall, api, json_response, route_params
from shared.domain.public import Health

bp = func.Blueprint()


@api(bp, "ops_health", "health", "GET", access="public", response=Health, other_responses={503: Health})
def ops_health(call: PublicCall) -> func.HttpResponse:
    """Health: anyone gets ok/degraded (503); staff also get storage, queues, poison, agent status."""
    report = call.container.health.report(call.caller)
    return json_response(report, 200 if report.status == "ok" else 503)


@api(bp, "ops_openapi", "openapi.json", "GET", access="public")
def ops_openapi(call: PublicCall) -> func.HttpResponse:
    """The OpenAPI 3.1 document of this API, built from the registered functions."""
    settings = call.container.settings
    return json_response(openapi_document(settings.app_version, settings.environment == "local"))


@cache
def openapi_document(version: str, local: bool = True) -> dict[str, Any]:
    """Outside local, the local-only operations (the dev login) are left out: they answer 404 there."""
    return build_openapi([op for op in OPERATIONS if local or not op.local_only], version)


def build_openapi(operations: Iterable[Operation], version: str) -> dict[str, Any]:
    """The document for `operations`: paths, parameters and security from their declarations."""
    operations = list(operations)
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}

    def schema(model: type[BaseModel]) -> dict[str, Any]:
        """The model's JSON schema; the models it uses go to components, where its refs point."""
        return hoist(model.model_json_schema(ref_template=COMPONENT + "{model}"), schemas)

    for op in operations:
        path = "/api/" + ROUTE_PARAM.sub(r"{\1}", op.route) + "/"
        operation: dict[str, Any] = {"operationId": op.name, "summary": op.summary, "responses": {}}
        if params := route_params(op.route):
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
                for name, kind in params.items()
            ]
        if op.query:
            operation.setdefault("parameters", []).extend(
                {"name": name, "in": "query", "required": False, "schema": field}
                for name, field in schema(op.query)["properties"].items()
            )
        if op.body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema(op.body)}},
            }
        for status, model in {op.status: op.response, **op.other_responses}.items():
            described: dict[str, Any] = {
                "description": "Success" if status < 300 else HTTPStatus(status).phrase
            }
            if model:
                described["content"] = {"application/json": {"schema": schema(model)}}
            operation["responses"][str(status)] = described
        operation["responses"]["default"] = {
            "description": "Error (RFC 9457)",
            "content": {  # problem+json when Accept names it, else application/json (SPEC §5)
                media: {"schema": {"$ref": "#/components/schemas/Problem"}}
                for media in ("application/problem+json", "application/json")
            },
        }
        if op.access == "public":  # a token is optional here: it may show staff more
            operation["security"] = [{}, {"bearer": []}]
        else:
            operation["security"] = [{"bearer": []}]
            if op.access != "user":
                operation["x-required-role"] = op.access
        if links := links_from(op, operations):
            operation["responses"][str(op.status)]["links"] = links
        paths.setdefault(path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "ResolveMeQ Functions", "version": version},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas,
        },
    }


COMPONENT = "#/components/schemas/"
# OpenAPI links (create -> process -> history -> rollback, feedback ...): where a later call finds
# a path parameter in an earlier success response. A ticket's `id` is in every response that is a
# ticket or names one (`ticket_id`); an `action_id` in a history page's newest entry. Derived from
# the declarations, so a new route that takes `{id}` is linked by construction.
LINK_SOURCES: dict[str, list[tuple[str, type]]] = {
    "id": [("id", int), ("ticket_id", int)],
    "action_id": [("action_history", list)],
}


def links_from(op: Operation, operations: list[Operation]) -> dict[str, Any]:
    """The links from `op`'s success response to every operation whose path parameters it holds."""
    fields = op.response.model_fields if op.response else {}

    def pointer(name: str) -> str | None:
        for field_name, kind in LINK_SOURCES.get(name, []):
            annotation = fields[field_name].annotation if field_name in fields else None
            if annotation is kind or getattr(annotation, "__origin__", None) is kind:
                return f"$response.body#/{field_name}" + ("/0/id" if kind is list else "")
        return None

    links: dict[str, Any] = {}
    for target in operations:
        found = {name: pointer(name) for name in route_params(target.route)}
        if found and all(found.values()):
            links[target.name] = {"operationId": target.name, "parameters": found}
    return links


def hoist(found: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Move every `$defs` of `found` (at any depth) into `schemas`, pointing the refs there.

    OpenAPI tools resolve `$ref`s against the whole document, where a `#/$defs/...` left inside
    an operation points at nothing. Two models may each have a nested model of the same name
    (two `Status` enums from different modules): the second one would silently replace the
    first, so the build refuses it (rename one of them)."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        for name, definition in (node.pop("$defs", None) or {}).items():
            definition = walk(definition)
            if schemas.setdefault(name, definition) != definition:
                raise ValueError(f"two different schemas are both named {name!r} in the OpenAPI document")
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node = {**node, "$ref": COMPONENT + ref.removeprefix("#/$defs/")}
        return {key: walk(value) for key, value in node.items()}

    hoisted: dict[str, Any] = walk(found)
    return hoisted


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}}},
        },
    },
}
