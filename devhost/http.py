"""HTTP triggers behind starlette: ASP.NET-style route templates, problem+json for 404/405/500."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import azure.functions as func
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from devhost.functions import AppFunction, Invoker, log

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}$")
_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": lambda v: re.fullmatch(r"[+-]?\d+", v) is not None and -(2**31) <= int(v) < 2**31,
    "long": lambda v: re.fullmatch(r"[+-]?\d+", v) is not None and -(2**63) <= int(v) < 2**63,
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": lambda v: (
        re.fullmatch(r"\{?[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}\}?", v) is not None
    ),
}


@dataclass(frozen=True)
class Segment:
    literal: str | None = None  # lower-cased; routing is case-insensitive
    param: str | None = None
    constraint: str | None = None

    @classmethod
    def parse(cls, text: str, template: str) -> Segment:
        if "{" not in text and "}" not in text:
            return cls(literal=text.lower())
        match = _PARAM.match(text)
        if not match:
            raise ValueError(
                f"route {template!r}: unsupported segment {text!r} (use {{name}} or {{name:int}})"
            )
        name, constraint = match.groups()
        if constraint and constraint not in _CONSTRAINTS:
            raise ValueError(f"route {template!r}: unsupported constraint {constraint!r}")
        return cls(param=name, constraint=constraint)

    @property
    def precedence(self) -> int:
        """ASP.NET inbound precedence: literal before constrained parameter before bare parameter."""
        return 0 if self.literal is not None else 1 if self.constraint else 2

    def match(self, value: str) -> bool:
        if self.literal is not None:
            return value.lower() == self.literal
        return bool(value) and (self.constraint is None or _CONSTRAINTS[self.constraint](value))


@dataclass(frozen=True)
class Route:
    function: AppFunction
    segments: tuple[Segment, ...]

    @classmethod
    def of(cls, function: AppFunction) -> Route:
        parts = function.route.split("/") if function.route else []
        return cls(function, tuple(Segment.parse(p, function.route) for p in parts))

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(s.precedence for s in self.segments)

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments) or not all(s.match(p) for s, p in zip(self.segments, parts)):
            return None
        return {s.param: p for s, p in zip(self.segments, parts) if s.param}


class Router:
    def __init__(self, functions: Sequence[AppFunction], prefix: str):
        self.prefix = tuple(p.lower() for p in prefix.split("/") if p)
        self.routes = sorted((Route.of(f) for f in functions), key=lambda r: r.precedence)  # stable sort

    def split(self, raw_path: str) -> list[str] | None:
        """Path segments after the route prefix (percent-decoded, trailing slash ignored), or None."""
        parts = [unquote(p) for p in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        if tuple(p.lower() for p in parts[: len(self.prefix)]) != self.prefix:
            return None
        return parts[len(self.prefix) :]

    def find(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | set[str] | None:
        """The best route allowing `method`; else the methods the path allows (405); None for 404."""
        parts = self.split(raw_path)
        if parts is None:
            return None
        allowed: set[str] = set()
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            if method in route.function.methods:
                return route, params
            allowed.update(route.function.methods)
        return allowed or None


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
        if isinstance(found, set):
            allow = ", ".join(sorted(found))
            detail = f"{request.method} is not allowed on {request.url.path}; use {allow}."
            return problem(405, "Method Not Allowed", detail, "method_not_allowed", {"Allow": allow})
        route, params = found
        req = func.HttpRequest(
            request.method,
            str(request.url),
            headers={k: ", ".join(request.headers.getlist(k)) for k in dict.fromkeys(request.headers.keys())},
            params=dict(request.query_params),
            route_params=params,
            body=await request.body(),
        )
        reason = "This function was programmatically called via the host APIs."
        try:
            result = await self.invoker.call(
                route.function, req, reason, request.headers.get("traceparent", "")
            )
        except Exception:  # the invoker logged the traceback
            return internal_error()
        try:
            return render(result)
        except Exception:
            log.exception("Executed 'Functions.%s' but its result cannot be rendered", route.function.name)
            return internal_error()


def build_app(
    functions: Sequence[AppFunction], prefix: str, invoker: Invoker, host: dict[str, Any]
) -> Starlette:
    """`host` is local.settings.json's Host section: CORS and CORSCredentials as Core Tools reads them."""
    middleware = []
    if host.get("CORS"):
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=[o.strip() for o in str(host["CORS"]).split(",") if o.strip()],
                allow_methods=["*"],
                allow_headers=["*"],
                allow_credentials=bool(host.get("CORSCredentials")),
            )
        )
    endpoint = HttpTriggers(functions, prefix, invoker)  # an ASGI app, so starlette lets every method through
    return Starlette(routes=[StarletteRoute("/{path:path}", endpoint)], middleware=middleware)
