"""The console's static files (functions/console.py): what is served, with which headers, and that
nothing else is. What the page does in a browser is tested in tests/browser."""

from __future__ import annotations

import re
from pathlib import Path

import azure.functions as func
import pytest

import functions.http
from functions.console import ASSETS, CONSOLE_DIR, CSP
from shared.errors import ServiceMisconfigured
from tests.conftest import bearer
from tests.unit.http_client import _FUNCTIONS, Context, payload
from tools.package import app_files

pytestmark = pytest.mark.usefixtures("container")

EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def get(name: str, url: str, route: dict[str, str] | None = None, **headers: str) -> func.HttpResponse:
    request = func.HttpRequest("GET", url, headers=headers, params={}, route_params=route or {}, body=b"")
    return _FUNCTIONS[name](request, Context())


def page(**headers: str) -> func.HttpResponse:
    return get("console_page", "http://127.0.0.1:7071/api/console/", **headers)


def asset(file: str, **headers: str) -> func.HttpResponse:
    return get("console_asset", f"http://127.0.0.1:7071/api/console/{file}", {"file": file}, **headers)


def test_the_page_is_served_with_a_strict_csp_and_nosniff() -> None:
    response = page()
    assert response.status_code == 200
    assert response.mimetype == "text/html" and response.charset == "utf-8"
    assert response.headers["Content-Security-Policy"] == CSP == EXPECTED_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert b'<script type="module" src="console.js"></script>' in response.get_body()


MEDIA = [("console.js", "text/javascript"), ("console.css", "text/css")]


@pytest.mark.parametrize(("file", "mimetype"), MEDIA)
def test_each_asset_has_its_media_type_and_the_same_headers(file: str, mimetype: str) -> None:
    response = asset(file)
    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.get_body() == (CONSOLE_DIR / file).read_bytes()
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_without_its_slash_redirects_to_it() -> None:
    # Its assets are relative to the page: without the slash they would resolve to /api/console.js.
    response = get("console_page", "http://127.0.0.1:7071/api/console")
    assert response.status_code == 308 and response.headers["Location"] == "/api/console/"


@pytest.mark.parametrize(
    "file",
    ["secret.txt", "..", "../function_app.py", "..%2Ffunction_app.py", "CONSOLE.JS", "index.html/", ".", ""],
)
def test_nothing_but_the_listed_files_is_served(file: str) -> None:
    response = asset(file, Accept="application/problem+json")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json" and payload(response)["code"] == "not_found"


def test_a_revalidation_with_the_etag_is_a_304_without_a_body() -> None:
    first = asset("console.js")
    again = asset("console.js", **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_body() == b""
    assert asset("console.js", **{"If-None-Match": '"something-else"'}).status_code == 200


def test_a_token_changes_nothing_the_static_files_hold_no_data() -> None:
    assert page(**bearer("ada", "admin")).get_body() == page().get_body()
    assert page(Authorization="Bearer nonsense").status_code == 200


def test_the_files_name_no_other_origin() -> None:
    # No CDN, font or analytics host: the CSP would block them, and the files must not need them.
    for name in ASSETS:
        text = (CONSOLE_DIR / name).read_text(encoding="utf-8")
        other = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", text)
        assert not other, (name, other)
        assert "http://www.w3.org/2000/svg" in text or "https://" not in text, name
    assert not re.search(r"\bstyle=", (CONSOLE_DIR / "index.html").read_text()), "inline styles break the CSP"


def test_the_console_is_in_the_deployment_package() -> None:
    files = app_files(Path(__file__).resolve().parents[2])
    assert {f"console/{name}" for name in ASSETS} <= set(files)
    assert "functions/console.py" in files


def test_the_console_opens_when_storage_is_down_or_the_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every API route needs the container (settings, storage); the console's files do not, so it
    # opens and can show what is wrong (its Health screen, the API's 503 sentences).
    def outage() -> None:
        raise ServiceMisconfigured("The service is misconfigured (AUTH_JWT_SECRET).")

    monkeypatch.setattr(functions.http, "get_container", outage)
    health = get("ops_health", "http://127.0.0.1:7071/api/health/")
    assert health.status_code == 503
    assert page().status_code == 200 and asset("console.js").status_code == 200
    assert asset("nope.txt").status_code == 404
