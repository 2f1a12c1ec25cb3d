"""Call the app's functions in-process, as the Functions worker would (no HTTP server)."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

import function_app

REGISTERED = function_app.app.get_functions()
_FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in REGISTERED}


class Context:
    invocation_id = "test-invocation"


def invoke(
    name: str,
    method: str = "GET",
    *,
    json_body: Any = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    route: dict[str, str] | None = None,
) -> func.HttpResponse:
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = func.HttpRequest(
        method,
        f"http://localhost/api/{name}",
        headers=headers,
        params=params or {},
        route_params=route or {},
        body=body or b"",
    )
    return _FUNCTIONS[name](request, Context())


def payload(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())
