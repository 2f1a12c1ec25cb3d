"""The operations console: `GET /api/console/` and its assets `GET /api/console/{file}`.

Static files from the project's `console/` folder (an HTML page, one JS module, one CSS file), public:
the page holds no data. Everything it shows comes from the API, called by the page with the bearer
token the user pastes (kept in the tab's sessionStorage), so the console can do exactly what that
token may do and nothing more. The CSP forbids any request or script but this origin's own.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import azure.functions as func

from functions.http import PublicCall, api
from shared.errors import NotFound

bp = func.Blueprint()

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


def serve(call: PublicCall, name: str) -> func.HttpResponse:
    if name not in ASSETS:
        raise NotFound("The console has no such file.")
    body, etag = asset(name)
    headers = {**HEADERS, "ETag": etag}
    if etag in (call.req.headers.get("If-None-Match") or ""):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(
        body, status_code=200, headers=headers, mimetype=ASSETS[name].split(";")[0], charset="utf-8"
    )


@api(bp, "console_page", "console", "GET", access="public")
def console_page(call: PublicCall) -> func.HttpResponse:
    """GET /api/console/ — the operations console (a static page; the API calls carry your token)."""
    path = urlsplit(call.req.url).path
    if not path.endswith("/"):
        # Its assets are named relative to the page, which needs the slash to resolve them here.
        return func.HttpResponse(status_code=308, headers={**HEADERS, "Location": path + "/"})
    return serve(call, "index.html")


@api(bp, "console_asset", "console/{file}", "GET", access="public")
def console_asset(call: PublicCall) -> func.HttpResponse:
    """GET /api/console/{file} — the console's script and style sheet."""
    return serve(call, call.req.route_params.get("file", ""))
