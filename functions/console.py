"""The operations console: `GET /api/console/` and its assets `GET /api/console/{file}`.

Static files from the project's `console/` folder (an HTML page, one JS module, one CSS file), public:
the page holds no data. Everything it shows comes from the API, called by the page with the bearer
token the user pastes (kept in the tab's sessionStorage), so the console can do exactly what that
token may do and nothing more. The CSP forbids any request or script but this origin's own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from functions.http import INTERNAL_ERROR, OPERATIONS, Operation, problem
from shared.errors import NotFound

bp = func.Blueprint()
log = logging.getLogger("resolvemeq.console")

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
# The files served, by name: nothing else of the folder (or the disk) can be asked for.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidated on every load (a deploy changes them); the ETag makes that a 304.
    "Cache-Control": "no-cache",
}


@cache
def asset(name: str) -> tuple[bytes, str]:
    """The file's bytes and ETag, read once per worker (the files change only with a deploy)."""
    body = (CONSOLE_DIR / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def serve(req: func.HttpRequest, name: str) -> func.HttpResponse:
    if name not in ASSETS:
        return problem(NotFound("The console has no such file."), req.headers.get("Accept"))
    body, etag = asset(name)
    headers = {**HEADERS, "ETag": etag}
    if etag in (req.headers.get("If-None-Match") or ""):
        return func.HttpResponse(status_code=304, headers=headers)
    mimetype = ASSETS[name].split(";")[0]
    return func.HttpResponse(body, status_code=200, headers=headers, mimetype=mimetype, charset="utf-8")


Static = Callable[[func.HttpRequest], func.HttpResponse]


def static(name: str, route: str) -> Callable[[Static], Any]:
    """Register a static file route, declared public like every route (OPERATIONS: the access
    matrix, OpenAPI, the security suites), but served without the app's container: no settings,
    token or storage is needed to hand out these files, so the console still opens (and says what
    is wrong) when storage is down or the settings are refused."""

    def register(handler: Static) -> Any:
        summary = (handler.__doc__ or name).strip().splitlines()[0]
        OPERATIONS.append(Operation(name, route, "GET", "public", summary, None, None, 200, None))

        def run(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
            try:
                return handler(req)
            except Exception:  # a file missing from the deployment: logged, never a stack trace
                log.exception("the console could not serve %s", name)
                return problem(INTERNAL_ERROR, req.headers.get("Accept"))

        run.__name__, run.__doc__ = handler.__name__, handler.__doc__
        return bp.function_name(name)(bp.route(route=route, methods=["GET"])(run))

    return register


@static("console_page", "console")
def console_page(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/console/ — the operations console (a static page; the API calls carry your token)."""
    path = urlsplit(req.url).path
    if not path.endswith("/"):
        # Its assets are named relative to the page, which needs the slash to resolve them here.
        return func.HttpResponse(status_code=308, headers={**HEADERS, "Location": path + "/"})
    return serve(req, "index.html")


@static("console_asset", "console/{file}")
def console_asset(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/console/{file} — the console's script and style sheet."""
    return serve(req, req.route_params.get("file", ""))
