"""Pure parts of the local host: routing, settings, schedules, response rendering."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest

from devhost.functions import AppFunction, FunctionTimeout, Invoker, describe, discover
from devhost.http import Router, query_params, render
from devhost.settings import (
    QueueOptions,
    load_host_json,
    parse_function_timeout,
    parse_timespan,
)
from devhost.timers import Schedule
from shared.local_settings import load_local_settings
from tests.devhost import sample_app

FUNCTIONS = discover(sample_app.app)  # get_functions() may run once per app: it rejects "duplicates" after
ROUTER = Router([f for f in FUNCTIONS if f.kind == "httpTrigger"], "api")


def routed(method: str, path: str) -> object:
    found = ROUTER.find(method, path)
    return (found[0].function.name, found[1]) if found else None


def http_app(*routes: tuple[str, str | None, list[str] | None]) -> list[AppFunction]:
    """A FunctionApp with one HTTP function per (name, route, methods)."""
    app = func.FunctionApp()
    for name, route, methods in routes:
        app.function_name(name)(app.route(route=route, methods=methods)(lambda req: None))
    return [f for f in discover(app) if f.kind == "httpTrigger"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/items/special", ("items_special", {})),
        ("/api/items/7", ("items_by_id", {"id": "7"})),
        ("/api/items/-7/", ("items_by_id", {"id": "-7"})),
        ("/api/items/+7", ("items_by_id", {"id": "+7"})),
        ("/api/items/%207", ("items_by_id", {"id": " 7"})),  # int.TryParse allows surrounding spaces
        ("/api/items/by-name/x7", ("items_by_name", {"name": "x7"})),
        ("/api/items/by-name/a%2Fb", ("items_by_name", {"name": "a/b"})),
        ("/API/ITEMS", ("items_list", {})),
    ],
)
def test_routing_and_constraints(path: str, expected: object) -> None:
    assert routed("GET", path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/items/99999999999",  # beyond int32
        "/api/items/\u0661\u0662",  # Arabic-Indic digits: str.isdigit() but not int.TryParse
        "/api/items/%D9%A1%D9%A2",
        "/api/items/\uff11",  # full-width 1
        "/api/items/7x",
        "/api/items/%20",  # whitespace alone is no number
    ],
)
def test_int_constraint_is_dotnet_int_parse(path: str) -> None:
    assert routed("GET", path) is None


def test_a_wrong_method_matches_no_route() -> None:
    assert routed("PUT", "/api/items/7") is None  # 404, as the Azure host's method constraint does
    assert routed("DELETE", "/api/items/7") == ("items_by_id", {"id": "7"})


@pytest.mark.parametrize("path", ["/items", "/api", "/api/", "/api/items/7/extra"])
def test_no_match(path: str) -> None:
    assert routed("GET", path) is None


def test_routes_are_tried_in_function_name_order_ignoring_case() -> None:
    functions = http_app(("b_any", "things/{x}", ["GET"]), ("A_list", "things/list", ["GET"]))
    router = Router(functions, "api", check=False)  # devhost refuses this app; the order still holds
    assert [r.function.name for r in router.routes] == ["A_list", "b_any"]
    assert router.find("GET", "/api/things/list")[0].function.name == "A_list"  # type: ignore[index]
    # Ordinal ignoring case upper-cases: "_" (0x5F) sorts after letters, as in .NET.
    router = Router(http_app(("a_b", "one", None), ("aB", "two", None)), "", check=False)
    assert [r.function.name for r in router.routes] == ["aB", "a_b"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("tickets_get", "tickets/{id}", ["GET"]), ("tickets_list", "tickets/list", ["GET"])),
        (("by_id", "t/{id:int}", ["GET"]), ("by_long", "t/{n:long}", ["GET"])),
        (("by_name", "t/{name:alpha}", ["GET"]), ("by_flag", "t/{on:bool}", ["GET"])),
        (("by_name", "t/{name:alpha}", ["GET"]), ("by_guid", "t/{g:guid}", ["GET"])),
        (("any_method", "t/x", None), ("get_only", "T/X/", ["GET"])),
        (("same", "t/{a}/x", ["GET", "POST"]), ("other", "t/y/{b}", ["POST"])),
    ],
)
def test_two_routes_that_can_match_one_request_are_refused(first: tuple, second: tuple) -> None:
    with pytest.raises(
        ValueError, match=f"functions .*{first[0]}.*{second[0]}|functions .*{second[0]}.*{first[0]}"
    ):
        Router(http_app(first, second), "api")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("tickets_get", "tickets/{id:int}", ["GET"]), ("tickets_list", "tickets/list", ["GET"])),
        (("by_id", "t/{id:int}", ["GET"]), ("by_name", "t/{name:alpha}", ["GET"])),
        (("by_id", "t/{id:int}", ["GET"]), ("by_guid", "t/{g:guid}", ["GET"])),
        (("read", "t/{id}", ["GET"]), ("write", "t/{id}", ["POST"])),
        (("short", "t/{id}", ["GET"]), ("long", "t/{id}/x", ["GET"])),
    ],
)
def test_disjoint_routes_are_accepted(first: tuple, second: tuple) -> None:
    assert len(Router(http_app(first, second), "api").routes) == 2


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("files/{*rest}", "not supported by devhost"),
        ("files/{id?}", "not supported by devhost"),
        ("files/{id=1}", "not supported by devhost"),
        ("files/{a}.{b}", "not supported by devhost"),
        ("files/{id:min(1)}", "not supported by devhost"),
        ("files/{id:decimal}", "not supported by devhost"),
        ("files//x", "empty segment"),
        ("files/{id}/{ID}", "more than once"),
        ("admin/stats", "built-in routes"),
        ("runtimeinfo", "built-in routes"),
    ],
)
def test_routes_azure_rejects_or_devhost_cannot_serve_are_refused(route: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Router(http_app(("f", route, ["GET"])), "api")


@pytest.mark.parametrize("name", ["1abc", "has space", "dot.name", "host", "HOST", "a" * 129, "ünï", "x\n"])
def test_function_names_azure_rejects_are_refused(name: str) -> None:
    app = func.FunctionApp()
    app.function_name(name)(app.route(route="r")(lambda req: None))
    with pytest.raises(ValueError, match="not valid on Azure"):
        discover(app)


def test_function_names_are_unique_ignoring_case() -> None:
    app = func.FunctionApp()
    app.function_name("Thing")(app.route(route="a")(lambda req: None))
    app.function_name("thing")(app.route(route="b")(lambda req: None))
    with pytest.raises(ValueError, match="'Thing' and 'thing' are the same to Azure"):
        discover(app)


def test_valid_names_pass() -> None:
    app = func.FunctionApp()
    app.function_name("a" * 128)(app.route(route="a")(lambda req: None))
    app.function_name("Z9_-x")(app.route(route="b")(lambda req: None))
    assert len(discover(app)) == 2


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
    assert load_local_settings(tmp_path, create_from_sample=True) == {"CORS": "*"}
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


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("", {}),
        ("status=", {}),
        ("status", {}),
        ("a=1&a=2&b=3", {"a": "1,2", "b": "3"}),
        ("Key=1&KEY=2", {"Key": "1,2"}),
        ("a=&a=", {}),
        ("a=1&a=", {"a": "1"}),
        ("a=&a=2", {"a": "2"}),
        ("q=%C3%A9+x", {"q": "é x"}),
    ],
)
def test_query_params_as_the_azure_host_builds_them(query: str, params: dict[str, str]) -> None:
    assert query_params(query) == params


def test_ncrontab_ands_day_of_month_and_day_of_week() -> None:
    friday_13 = Schedule("0 0 0 13 * 5")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    first = friday_13.next_after(start)
    assert first == datetime(2024, 9, 13, tzinfo=UTC)  # cron's OR would fire on Jan 5 (a Friday)
    assert friday_13.next_after(first) == datetime(2024, 12, 13, tzinfo=UTC)
    assert Schedule("0 0 0 13 * *").next_after(start) == datetime(2024, 1, 13, tzinfo=UTC)
    assert Schedule("0 0 0 * * 5").next_after(start) == datetime(2024, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 1800.0), ("00:05:00", 300.0), ("-1", None), ("00:00:01", 1.0)],
)
def test_function_timeout_is_read_as_the_host_reads_it(value: str | None, seconds: float | None) -> None:
    assert parse_function_timeout(value) == seconds


@pytest.mark.parametrize("value", ["00:00:00", "00:00:00.500", "5 minutes"])
def test_function_timeout_below_a_second_or_garbage_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_function_timeout(value)


def test_project_host_json_sets_function_timeout() -> None:
    assert load_host_json(Path(__file__).resolve().parents[2] / "host.json").function_timeout == 300


@pytest.mark.parametrize("is_async", [False, True])
def test_an_invocation_past_its_timeout_fails_and_a_thread_is_abandoned(is_async: bool) -> None:
    release = threading.Event()

    def stuck(req: object) -> str:
        release.wait(10)
        return "late"

    async def stuck_async(req: object) -> str:
        await asyncio.sleep(10)
        return "late"

    app = func.FunctionApp()
    app.route(route="stuck")(stuck_async if is_async else stuck)
    [fn] = discover(app)
    pool = ThreadPoolExecutor(2)
    invoker = Invoker(pool, timeout=0.2)
    with pytest.raises(FunctionTimeout, match=r"Timeout value of 0\.2s exceeded by function"):
        asyncio.run(invoker.call(fn, None, "test"))
    release.set()
    pool.shutdown(wait=True)


UNRESOLVED_APP = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(schedule="%DEVHOST_TEST_UNSET_SCHEDULE%", arg_name="timer")
def sweep(timer: func.TimerRequest) -> None:
    pass


@app.timer_trigger(schedule="%DEVHOST_TEST_SET_SCHEDULE%", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    pass


@app.route(route="ping")
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
"""


def test_a_schedule_whose_setting_is_missing_puts_only_that_function_in_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devhost.__main__ import _load

    (tmp_path / "unresolved_app.py").write_text(UNRESOLVED_APP, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DEVHOST_TEST_UNSET_SCHEDULE", raising=False)
    monkeypatch.setenv("DEVHOST_TEST_SET_SCHEDULE", "*/5 * * * * *")
    functions = _load("unresolved_app:app", "api")
    assert sorted(f.name for f in functions) == ["ping", "tick"]  # the host runs the others
    assert [f.schedule for f in functions if f.name == "tick"] == ["*/5 * * * * *"]
    assert "Function sweep is in error" in capsys.readouterr().out
