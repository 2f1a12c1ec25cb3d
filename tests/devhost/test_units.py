"""Pure parts of the local host: routing, settings, schedules, response rendering."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest

from devhost.functions import describe, discover
from devhost.http import Router, render
from devhost.settings import QueueOptions, load_host_json, load_local_settings, parse_timespan
from devhost.timers import Schedule
from tests.devhost import sample_app

FUNCTIONS = discover(sample_app.app)  # get_functions() may run once per app: it rejects "duplicates" after
ROUTER = Router([f for f in FUNCTIONS if f.kind == "httpTrigger"], "api")


def routed(method: str, path: str) -> object:
    found = ROUTER.find(method, path)
    return (found[0].function.name, found[1]) if isinstance(found, tuple) else found


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/items/special", ("items_special", {})),
        ("/api/items/7", ("items_by_id", {"id": "7"})),
        ("/api/items/-7/", ("items_by_id", {"id": "-7"})),
        ("/api/items/99999999999", ("items_by_name", {"name": "99999999999"})),  # beyond int32
        ("/api/items/x7", ("items_by_name", {"name": "x7"})),
        ("/api/items/a%2Fb", ("items_by_name", {"name": "a/b"})),
        ("/API/ITEMS", ("items_list", {})),
    ],
)
def test_routing_precedence_and_constraints(path: str, expected: object) -> None:
    assert routed("GET", path) == expected


def test_method_mismatch_reports_the_allowed_methods() -> None:
    assert routed("PUT", "/api/items/7") == {"GET", "DELETE"}
    assert routed("DELETE", "/api/items/7") == ("items_by_name", {"name": "7"})


@pytest.mark.parametrize("path", ["/items", "/api", "/api/", "/api/items/7/extra"])
def test_no_match(path: str) -> None:
    assert routed("GET", path) is None


def test_unsupported_route_syntax_fails_fast() -> None:
    app = func.FunctionApp()
    app.route(route="files/{*rest}")(lambda req: None)
    with pytest.raises(ValueError, match="unsupported segment"):
        Router(discover(app), "api")


def test_describe_lists_methods_urls_queues_and_schedules() -> None:
    text = describe(FUNCTIONS, "http://127.0.0.1:7071/api")
    assert "echo: [POST] http://127.0.0.1:7071/api/echo\n" in text
    assert "on_slow_message: queueTrigger (queue: devhost-slow)" in text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:05", 5), ("00:00:00.500", 0.5), ("01:02:03", 3723), ("1.00:00:00", 86400)],
)
def test_parse_timespan(text: str, seconds: float) -> None:
    assert parse_timespan(text) == seconds


def test_parse_timespan_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_timespan("5s")


def test_host_json_defaults_and_project_file(tmp_path: Path) -> None:
    assert load_host_json(tmp_path / "missing.json").queues == QueueOptions()
    project = load_host_json(Path(__file__).resolve().parents[2] / "host.json")
    assert project.route_prefix == "api"
    assert project.queues.visibility_timeout == 5 and project.queues.max_polling_interval == 2


def test_local_settings_are_copied_from_the_sample_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = {"Values": {"DEVHOST_T_A": "from-file", "DEVHOST_T_B": "from-file"}, "Host": {"CORS": "*"}}
    (tmp_path / "local.settings.sample.json").write_text(json.dumps(sample))
    monkeypatch.setenv("DEVHOST_T_A", "from-env")
    monkeypatch.delenv("DEVHOST_T_B", raising=False)
    assert load_local_settings(tmp_path) == {"CORS": "*"}
    assert (tmp_path / "local.settings.json").exists()
    assert os.environ["DEVHOST_T_A"] == "from-env"
    assert os.environ["DEVHOST_T_B"] == "from-file"
    monkeypatch.delenv("DEVHOST_T_B")


def test_ncrontab_has_seconds_first() -> None:
    start = datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert Schedule("0 */5 * * * *").next_after(start) == datetime(2024, 1, 1, 0, 5, 0, tzinfo=UTC)
    assert Schedule("*/2 * * * * *").next_after(start) == datetime(2024, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert Schedule("00:00:30").next_after(start) == datetime(2024, 1, 1, 0, 0, 31, tzinfo=UTC)
    with pytest.raises(ValueError):
        Schedule("every minute")


def test_render_keeps_status_headers_and_charset() -> None:
    result = func.HttpResponse("hé", status_code=202, headers={"Set-Cookie": "a=1"}, charset="utf-8")
    result.headers.add_header("Set-Cookie", "b=2")
    response = render(result)
    assert response.status_code == 202
    assert response.body == "hé".encode()
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers.getlist("set-cookie") == ["a=1", "b=2"]
    assert render(None).status_code == 204
