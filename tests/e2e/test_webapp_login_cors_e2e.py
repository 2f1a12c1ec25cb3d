"""Through the local host with the sample's CORS: the web app's login, refresh and first calls,
each after its preflight, exactly as the browser sends them (webapp-calls.md)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from devhost.process import HostProcess
from tests.e2e.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text())
ORIGIN = "http://localhost:5173"
STRONG = "Zq8v1M3xT0bL7kR9wE2yN5pA4sD6fG0h"


def host(stack: Stack, **settings: str) -> HostProcess:
    """A host whose CORS is the sample's, whatever a local.settings.json beside it says."""
    process = HostProcess(
        stack.env(**settings),
        host_json=stack.host_json,
        args=("--cors", SAMPLE["Host"]["CORS"]),
    )
    stack.hosts.append(process)
    return process.start()


def browser_call(
    api: httpx.Client, method: str, path: str, token: str | None = None, body: object = None
) -> httpx.Response:
    """The preflight, checked, then the call with the app's headers."""
    asked = "authorization,content-type" if token else "content-type"
    preflight = api.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": asked,
        },
    )
    assert preflight.status_code == 204, (path, preflight.status_code)
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-methods"] == method
    assert set(preflight.headers["access-control-allow-headers"].split(", ")) == set(asked.split(","))
    headers = {"Origin": ORIGIN, "Accept": "*/*", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = api.request(method, path, headers=headers, content=None if body is None else json.dumps(body))
    assert response.headers["access-control-allow-origin"] == ORIGIN, path
    return response


def test_the_web_app_logs_in_refreshes_and_calls_from_its_dev_origin(stack: Stack) -> None:
    running = host(stack, DEV_ADMIN_EMAILS="boss@example.com")
    assert "Dev login for the web app" in running.output() and "dev-password" in running.output()
    with stack.client(running) as api:
        refused = browser_call(
            api, "POST", "/auth/login/", body={"email": "a@example.com", "password": "nope!!"}
        )
        assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/json")
        assert refused.json()["detail"]  # a sentence the app can show

        login = browser_call(
            api, "POST", "/auth/login/", body={"email": "Boss@Example.com", "password": "dev-password"}
        )
        assert login.status_code == 200, login.text
        tokens = login.json()
        assert tokens["user"]["email"] == "boss@example.com" and tokens["user"]["is_staff"] is True

        me = browser_call(api, "GET", "/auth/profile/", tokens["access"])
        assert me.status_code == 200 and me.json() == tokens["user"]

        created = browser_call(api, "POST", "/tickets/", tokens["access"], {"issue_type": "VPN"})
        assert created.status_code == 201, created.text
        exposed = created.headers["access-control-expose-headers"]
        assert "RateLimit-Remaining" in exposed and created.headers["ratelimit-remaining"]

        detail = browser_call(api, "GET", f"/tickets/{created.json()['id']}/", tokens["access"])
        assert detail.status_code == 200 and detail.json()["user"] == "boss@example.com"

        assert browser_call(api, "GET", "/tickets/", tokens["refresh"]).status_code == 401
        renewed = browser_call(api, "POST", "/auth/api/token/refresh/", body={"refresh": tokens["refresh"]})
        assert renewed.status_code == 200
        assert browser_call(api, "GET", "/auth/profile/", renewed.json()["access"]).status_code == 200

        stranger = api.options(
            "/auth/login/", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert stranger.status_code == 204 and "access-control-allow-origin" not in stranger.headers


def test_outside_local_the_login_is_a_404_through_the_host_too(stack: Stack) -> None:
    running = host(stack, ENVIRONMENT="production", AUTH_JWT_SECRET=STRONG)
    assert "Dev login for the web app" not in running.output()
    with stack.client(running) as api:
        for method, path, body in [
            ("POST", "/auth/login/", {"email": "a@example.com", "password": "dev-password"}),
            ("POST", "/auth/api/token/refresh/", {"refresh": "x"}),
            ("GET", "/auth/profile/", None),
        ]:
            response = browser_call(api, method, path, body=body)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["code"] == "not_found"
        assert api.get("/health/").status_code == 200
