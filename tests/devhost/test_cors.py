"""devhost's CORS is Core Tools' (ASP.NET Core's CorsMiddleware with one policy from Host.CORS):
preflights are answered by the host and never reach a function; an allowed origin is echoed with
the requested method and headers; a stranger gets no CORS header at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from starlette.testclient import TestClient

from devhost.cors import CorsPolicy
from devhost.functions import AppFunction
from devhost.http import build_app
from devhost.tokens import dev_login_text
from tests.unit.http_client import REGISTERED

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_HOST = json.loads((ROOT / "local.settings.sample.json").read_text())["Host"]
APP_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173")
# What the web app's fetch sends before every call: its headers are not CORS-safelisted.
ASKS_FOR = "authorization,content-type"
# The web app's paths (webapp-calls.md), trailing slash included; some with path parameters.
PATHS = [
    ("GET", "/api/tickets/list/?limit=100"),
    ("POST", "/api/tickets/"),
    ("GET", "/api/tickets/42/"),
    ("GET", "/api/tickets/42"),
    ("POST", "/api/tickets/42/status/"),
    ("POST", "/api/tickets/42/process/"),
    ("GET", "/api/tickets/42/agent-status/"),
    ("GET", "/api/tickets/42/action-history/"),
    ("POST", "/api/tickets/actions/a1b2/rollback/"),
    ("POST", "/api/auth/login/"),
    ("POST", "/api/auth/api/token/refresh/"),
    ("GET", "/api/auth/profile/"),
    ("PATCH", "/api/auth/notifications/7/read/"),
    ("PUT", "/api/agent/controls/"),
]
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-max-age",
)


class RecordingInvoker:
    """Stands in for the worker: records every invocation and answers as a function would."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def call(self, fn: AppFunction, req: func.HttpRequest, reason: str, traceparent: str) -> Any:
        self.calls.append(fn.name)
        return func.HttpResponse(
            "[]",
            mimetype="application/json",
            headers={"X-Next-Cursor": "000000000042", "Access-Control-Expose-Headers": "X-Next-Cursor"},
        )


# The project's functions, from the one get_functions() a FunctionApp allows per process.
FUNCTIONS = [
    AppFunction(f.get_function_name(), f.get_user_function(), f.get_trigger(), str(ROOT)) for f in REGISTERED
]


def client(host: dict[str, Any]) -> tuple[TestClient, RecordingInvoker]:
    invoker = RecordingInvoker()
    return TestClient(build_app(FUNCTIONS, "api", invoker, host)), invoker  # type: ignore[arg-type]


def preflight(api: TestClient, path: str, method: str, origin: str, asks: str | None = ASKS_FOR) -> Any:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if asks is not None:
        headers["Access-Control-Request-Headers"] = asks
    return api.options(path, headers=headers)


def cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k in CORS_HEADERS}


def test_the_sample_allows_the_web_apps_dev_origins_without_credentials() -> None:
    policy = CorsPolicy.from_host(SAMPLE_HOST)
    assert policy is not None and not policy.credentials and not policy.any_origin
    assert set(APP_ORIGINS) <= set(policy.origins)
    assert SAMPLE_HOST["CORSCredentials"] is False and " " not in SAMPLE_HOST["CORS"]


@pytest.mark.parametrize("origin", APP_ORIGINS)
@pytest.mark.parametrize(("method", "path"), PATHS, ids=[f"{m} {p}" for m, p in PATHS])
def test_a_preflight_from_the_web_app_is_answered_by_the_host_with_what_the_browser_needs(
    origin: str, method: str, path: str
) -> None:
    api, invoker = client(SAMPLE_HOST)
    response = preflight(api, path, method, origin)
    assert response.status_code == 204 and response.content == b""
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-methods"] == method
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["vary"] == "Origin"  # several origins: caches must key on it
    assert invoker.calls == []  # the preflight never reaches a function


def test_allowed_headers_echo_what_was_asked_trimmed_and_nothing_when_nothing_was() -> None:
    api, _ = client(SAMPLE_HOST)
    asked = preflight(
        api, "/api/tickets/", "POST", APP_ORIGINS[0], " Authorization , X-Custom,,content-type "
    )
    assert asked.headers["access-control-allow-headers"] == "Authorization, X-Custom, content-type"
    bare = preflight(api, "/api/tickets/", "GET", APP_ORIGINS[0], asks=None)
    assert bare.status_code == 204 and "access-control-allow-headers" not in bare.headers
    assert bare.headers["access-control-allow-origin"] == APP_ORIGINS[0]


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://localhost:5174",
        "https://localhost:5173",  # another scheme is another origin
        "http://LOCALHOST:5173",  # compared ordinally, as browsers send it lower-case
        "http://localhost:5173/",
        "null",
        "",
    ],
)
def test_an_unlisted_origin_gets_a_204_preflight_without_any_cors_header(origin: str) -> None:
    api, invoker = client(SAMPLE_HOST)
    response = preflight(api, "/api/tickets/list/", "GET", origin)
    assert response.status_code == 204 and cors_headers(response) == {}
    assert "vary" not in response.headers and invoker.calls == []
    actual = api.get("/api/tickets/list/", headers={"Origin": origin})
    assert actual.status_code == 200 and "access-control-allow-origin" not in actual.headers
    assert invoker.calls == ["tickets_list_alias"]


def test_an_actual_request_from_an_allowed_origin_gets_the_origin_and_keeps_the_functions_headers() -> None:
    api, invoker = client(SAMPLE_HOST)
    response = api.get("/api/tickets/list/?limit=5", headers={"Origin": APP_ORIGINS[1], "Accept": "*/*"})
    assert response.status_code == 200 and invoker.calls == ["tickets_list_alias"]
    assert response.headers["access-control-allow-origin"] == APP_ORIGINS[1]
    assert response.headers["vary"] == "Origin"
    assert response.headers["access-control-expose-headers"] == "X-Next-Cursor"  # the function's own
    assert response.headers["x-next-cursor"] == "000000000042"
    assert "access-control-allow-methods" not in response.headers  # preflight-only headers
    plain = api.get("/api/tickets/list/")  # no Origin: not a CORS request
    assert "access-control-allow-origin" not in plain.headers and "vary" not in plain.headers


def test_the_hosts_own_404_carries_the_cors_headers_and_a_plain_options_is_routed() -> None:
    api, invoker = client(SAMPLE_HOST)
    missing = api.get("/api/nowhere/", headers={"Origin": APP_ORIGINS[0]})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == APP_ORIGINS[0]
    # OPTIONS without Access-Control-Request-Method is no preflight: routed, and no route takes OPTIONS.
    options = api.options("/api/tickets/", headers={"Origin": APP_ORIGINS[0]})
    assert options.status_code == 404 and options.headers["access-control-allow-origin"] == APP_ORIGINS[0]
    assert invoker.calls == []


def test_without_cors_settings_a_preflight_is_routed_like_any_request_and_gets_404() -> None:
    for host in ({}, {"CORS": ""}, {"LocalHttpPort": 7071}):
        api, invoker = client(host)
        response = preflight(api, "/api/tickets/", "POST", APP_ORIGINS[0])
        assert response.status_code == 404 and cors_headers(response) == {}
        assert invoker.calls == []


def test_a_wildcard_allows_any_origin_with_a_star_and_no_vary() -> None:
    api, _ = client({"CORS": "*"})
    response = preflight(api, "/api/tickets/", "POST", "http://anything.example")
    assert response.status_code == 204 and response.headers["access-control-allow-origin"] == "*"
    assert "vary" not in response.headers
    assert (
        api.get("/api/nowhere", headers={"Origin": "http://x.example"}).headers["access-control-allow-origin"]
        == "*"
    )


def test_a_wildcard_among_other_origins_is_only_a_literal_as_in_aspnet() -> None:
    api, _ = client({"CORS": "http://localhost:5173,*"})
    assert cors_headers(preflight(api, "/api/tickets/", "GET", "http://anything.example")) == {}
    assert preflight(api, "/api/tickets/", "GET", APP_ORIGINS[0]).headers["access-control-allow-origin"]


def test_credentials_echo_the_origin_and_a_wildcard_with_credentials_refuses_to_start() -> None:
    api, _ = client({"CORS": "http://localhost:5173", "CORSCredentials": True})
    response = preflight(api, "/api/tickets/", "GET", APP_ORIGINS[0])
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-origin"] == APP_ORIGINS[0]
    assert "vary" not in response.headers  # one origin: ASP.NET adds no Vary
    with pytest.raises(ValueError, match="wildcard"):
        CorsPolicy.from_host({"CORS": "*", "CORSCredentials": True})


def test_configured_origins_are_lower_cased_but_not_trimmed_as_core_tools_does() -> None:
    policy = CorsPolicy.from_host({"CORS": "HTTP://LocalHost:5173,, http://127.0.0.1:5173,"})
    assert policy is not None and policy.origins == ("http://localhost:5173", " http://127.0.0.1:5173")
    assert policy.allows("http://localhost:5173") and not policy.allows("http://127.0.0.1:5173")


def test_cors_options_of_the_command_line_win_over_the_settings_file() -> None:
    from devhost.__main__ import parse_args

    args = parse_args(["--cors", "http://a.example", "--cors-credentials"])
    assert args.cors == "http://a.example" and args.cors_credentials is True
    defaults = parse_args([])
    assert defaults.cors is None and defaults.cors_credentials is None


def test_the_dev_login_is_printed_locally_only() -> None:
    text = dev_login_text({"DEV_ADMIN_EMAILS": "boss@example.com, ops@example.com"})
    assert text is not None and "dev-user@example.com / dev-password" in text
    assert "boss@example.com / dev-password" in text
    assert "s3cret-pass" in (dev_login_text({"DEV_LOGIN_PASSWORD": "s3cret-pass"}) or "")
    assert "DEV_ADMIN_EMAILS" in (dev_login_text({}) or "")
    assert dev_login_text({"ENVIRONMENT": "production"}) is None
