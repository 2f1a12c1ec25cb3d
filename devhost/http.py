"""HTTP triggers behind starlette, routed the way the Azure Functions host routes them.

What mirrors Azure, and where it was verified (Azure/azure-functions-host, src/):
- Functions are ordered by name, ordinal and case-insensitive (Host/FunctionMetadataManager.cs:
  `OrderBy(f => f.Name, StringComparer.OrdinalIgnoreCase)`), and each HTTP function's route is
  added to one route collection in that order (WebJobs.Script.WebHost/WebScriptHostHttpRoutesManager.cs);
  the first route that matches the path *and* the method wins.
- The method is a route constraint (`HttpMethodRouteConstraint`), so a known path with a wrong
  method matches no route: 404, never 405.
- Routes starting with "admin" or "runtime" are refused (Host/ScriptHost.cs, ValidateHttpFunction);
  Azure refuses two functions with the same route and intersecting methods (HttpRoutesConflict).
  devhost goes further and refuses any two routes that can match one path with a shared method,
  so that which function answers never depends on name order.
- Query parameters reach the function as the host builds them (WebJobs.Script.Grpc/
  MessageExtensions/GrpcMessageConversionExtensions.cs, ToRpcHttp): repeated keys joined with ","
  (StringValues.ToString), keys case-insensitive, empty values dropped. The Python worker reads that
  map as `req.params` (azure-functions-python-worker, azure_functions_worker/bindings/datumdef.py).
  StringValues.ToString (dotnet/runtime, Microsoft.Extensions.Primitives) skips empty values when
  it joins, so `?a=&a=2` is "2".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any
from urllib.parse import parse_qsl, unquote

import azure.functions as func
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from devhost.cors import CorsMiddleware, CorsPolicy
from devhost.functions import AppFunction, Invoker, log

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}$")
# ASP.NET Core's IntRouteConstraint is int.TryParse(value, NumberStyles.Integer, InvariantCulture):
# ASCII digits only (never "١٢" or full-width digits), an optional sign, and the whitespace
# NumberStyles.Integer allows around it (U+0009-U+000D, U+0020).
_INTEGER = re.compile(r"[\t\n\v\f\r ]*[+-]?[0-9]+[\t\n\v\f\r ]*")
_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": lambda v: _INTEGER.fullmatch(v) is not None and -(2**31) <= int(v) < 2**31,
    "long": lambda v: _INTEGER.fullmatch(v) is not None and -(2**63) <= int(v) < 2**63,
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": lambda v: (
        re.fullmatch(r"\{?[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}\}?", v) is not None
    ),
}
# Two constrained parameters can take one value when one of these satisfies both; every pair of
# supported constraints that can share a value shares one of these (int/long "1", alpha/bool
# "true", alpha/guid 32 letters a-f).
_WITNESSES = ("1", "true", "abc", "a" * 32, "00000000-0000-0000-0000-000000000000")
_RESERVED_PREFIXES = ("admin", "runtime")


@dataclass(frozen=True)
class Segment:
    literal: str | None = None  # lower-cased; routing is case-insensitive
    param: str | None = None
    constraint: str | None = None

    @classmethod
    def parse(cls, text: str, template: str) -> Segment:
        if not text:
            raise ValueError(f"route {template!r}: empty segment (ASP.NET rejects '//')")
        if "{" not in text and "}" not in text and "?" not in text:
            return cls(literal=text.lower())
        match = _PARAM.match(text)
        if not match:
            raise ValueError(
                f"route {template!r}: segment {text!r} is not supported by devhost "
                "(use literal, {name} or {name:constraint}; no optional, default, catch-all "
                "or multi-part segments)"
            )
        name, constraint = match.groups()
        if constraint and constraint not in _CONSTRAINTS:
            raise ValueError(
                f"route {template!r}: constraint {constraint!r} is not supported by devhost "
                f"(use one of {', '.join(_CONSTRAINTS)})"
            )
        return cls(param=name, constraint=constraint)

    def match(self, value: str) -> bool:
        if self.literal is not None:
            return value.lower() == self.literal
        return bool(value) and (self.constraint is None or _CONSTRAINTS[self.constraint](value))

    def overlaps(self, other: Segment) -> bool:
        """Whether some path segment matches both."""
        if self.literal is not None:
            return other.match(self.literal)
        if other.literal is not None:
            return self.match(other.literal)
        return any(self.match(v) and other.match(v) for v in _WITNESSES)


@dataclass(frozen=True)
class Route:
    function: AppFunction
    segments: tuple[Segment, ...]

    @classmethod
    def of(cls, function: AppFunction) -> Route:
        template = function.route
        if template.lower().startswith(_RESERVED_PREFIXES):
            raise ValueError(
                f"function {function.name}: route {template!r} conflicts with the host's built-in "
                "routes (Azure refuses routes starting with 'admin' or 'runtime')"
            )
        parts = template.split("/") if template else []
        segments = tuple(Segment.parse(p, template) for p in parts)
        names = [s.param.lower() for s in segments if s.param]
        if len(names) != len(set(names)):
            raise ValueError(f"route {template!r}: a parameter name appears more than once")
        return cls(function, segments)

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments) or not all(s.match(p) for s, p in zip(self.segments, parts)):
            return None
        return {s.param: p for s, p in zip(self.segments, parts) if s.param}

    def overlaps(self, other: Route) -> bool:
        """Whether one request (a path and a method) can match both routes."""
        shared_method = any(other.function.allows(m) for m in self.function.methods)
        return (
            shared_method
            and len(self.segments) == len(other.segments)
            and all(a.overlaps(b) for a, b in zip(self.segments, other.segments))
        )


def check_routes(routes: Sequence[Route]) -> None:
    """Refuse two HTTP functions that one request could reach, naming both."""
    for a, b in combinations(routes, 2):
        if a.overlaps(b):
            raise ValueError(
                f"functions {a.function.name} ({a.function.route!r}) and {b.function.name} "
                f"({b.function.route!r}) can both match one path with one method; "
                "make the routes or methods disjoint (e.g. {id:int} next to a literal)"
            )


class Router:
    def __init__(self, functions: Sequence[AppFunction], prefix: str, check: bool = True):
        self.prefix = tuple(p.lower() for p in prefix.split("/") if p)
        # Function-name order, as the Azure host builds its route collection.
        ordered = sorted(functions, key=lambda f: f.name.upper())  # .NET OrdinalIgnoreCase upper-cases
        self.routes = [Route.of(f) for f in ordered]
        if check:
            check_routes(self.routes)

    def split(self, raw_path: str) -> list[str] | None:
        """Path segments after the route prefix (percent-decoded, trailing slash ignored), or None."""
        parts = [unquote(p) for p in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        if tuple(p.lower() for p in parts[: len(self.prefix)]) != self.prefix:
            return None
        return parts[len(self.prefix) :]

    def find(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The first route (in function-name order) matching the path and the method; else None."""
        parts = self.split(raw_path)
        if parts is None:
            return None
        for route in self.routes:
            if route.function.allows(method) and (params := route.match(parts)) is not None:
                return route, params
        return None


def query_params(query_string: str) -> dict[str, str]:
    """`req.params` as the Azure host builds it: repeats joined with ",", empty values dropped."""
    grouped: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}  # ASP.NET's query collection is case-insensitive; first spelling wins
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        grouped.setdefault(spelling.setdefault(key.lower(), key), []).append(value)
    joined = {key: ",".join(v for v in values if v) for key, values in grouped.items()}
    return {key: value for key, value in joined.items() if value}


def problem(
    status: int, title: str, detail: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code}
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


def internal_error() -> Response:
    detail = "The server encountered an unexpected error. Please try again later."
    return problem(500, "Internal Server Error", detail, "internal_error")


def render(result: Any) -> Response:
    """The worker's `$return` conversion: HttpResponse, str, or nothing."""
    if result is None:
        return Response(status_code=204)
    if isinstance(result, (str, bytes)):
        return Response(result, 200, media_type="text/plain")
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"HTTP function returned {type(result).__name__}, not func.HttpResponse")
    response = Response(result.get_body(), result.status_code)
    if "content-type" not in result.headers:
        mimetype = result.mimetype
        response.headers["content-type"] = (
            f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
        )
    for name, value in result.headers.items():
        if name.lower() != "content-length":
            response.headers.append(name, value)
    return response


class HttpTriggers:
    """The ASGI endpoint behind every path: route, invoke, render."""

    def __init__(self, functions: Sequence[AppFunction], prefix: str, invoker: Invoker):
        self.router = Router([f for f in functions if f.kind == "httpTrigger"], prefix)
        self.invoker = invoker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.dispatch(Request(scope, receive))
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        found = self.router.find(request.method, raw_path)
        if found is None:
            detail = f"No function matches {request.method} {request.url.path}."
            return problem(404, "Not Found", detail, "not_found")
        route, params = found
        req = func.HttpRequest(
            request.method,
            str(request.url),
            headers={k: ", ".join(request.headers.getlist(k)) for k in dict.fromkeys(request.headers.keys())},
            params=query_params(request.scope.get("query_string", b"").decode("latin-1")),
            route_params=params,
            body=await request.body(),
        )
        reason = "This function was programmatically called via the host APIs."
        try:
            result = await self.invoker.call(
                route.function, req, reason, request.headers.get("traceparent", "")
            )
        except Exception:  # the invoker logged it (a FunctionTimeout too)
            return internal_error()
        try:
            return render(result)
        except Exception:
            log.exception("Executed 'Functions.%s' but its result cannot be rendered", route.function.name)
            return internal_error()


def build_app(
    functions: Sequence[AppFunction], prefix: str, invoker: Invoker, host: dict[str, Any]
) -> Starlette:
    """`host` is local.settings.json's Host section: CORS and CORSCredentials as Core Tools reads
    them (devhost/cors.py). Raises ValueError for a policy the host would refuse."""
    policy = CorsPolicy.from_host(host)
    middleware = [Middleware(CorsMiddleware, policy=policy)] if policy else []
    endpoint = HttpTriggers(functions, prefix, invoker)  # an ASGI app, so starlette lets every method through
    everything = StarletteRoute("/{path:path}", endpoint)
    # The path converter's `.*` stops at a newline (%0A in the path), and starlette would answer
    # such a path itself (404 text/plain); the Functions host routes it like any other path.
    everything.path_regex = re.compile(everything.path_regex.pattern, re.DOTALL)
    return Starlette(routes=[everything], middleware=middleware)
