"""The local host serving a sample app over HTTP, queues and timers, against a real Azurite."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from devhost.azurite import Azurite
from devhost.process import HostProcess
from tests.devhost import sample_app
from tests.devhost.conftest import b64, eventually, exists, poisoned, queue, records

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def host(storage: Azurite, host_json: Path) -> Iterator[HostProcess]:
    env = {"AzureWebJobsStorage": storage.connection_string, "SAMPLE_SLOW_SECONDS": "1"}
    with HostProcess(env, app="tests.devhost.sample_app:app", host_json=host_json) as running:
        yield running


@pytest.fixture(scope="module")
def http(host: HostProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host.url, timeout=10) as client:
        yield client


def test_lists_the_functions_like_core_tools(host: HostProcess) -> None:
    out = host.output()
    assert f"items_by_id: [GET,DELETE] {host.url}/items/{{id:int}}" in out
    assert "on_message: queueTrigger (queue: devhost-sample)" in out
    assert "tick: timerTrigger (schedule: * * * * * *, runOnStartup)" in out


@pytest.mark.parametrize("path", ["/items", "/items/"])
def test_routes_answer_with_and_without_trailing_slash(http: httpx.Client, path: str) -> None:
    assert http.get(path).json()["route"] == "list"


def test_query_params_reach_the_function(http: httpx.Client) -> None:
    assert http.get("/items/", params={"status": "open", "limit": "5"}).json()["params"] == {
        "status": "open",
        "limit": "5",
    }


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("status=", {}),  # Azure drops empty values: `?status=` is no filter at all
        ("status=&limit=5", {"limit": "5"}),
        ("flag", {}),
        ("a=1&a=2", {"a": "1,2"}),  # repeats joined with commas
        ("a=1&A=2", {"a": "1,2"}),  # keys are case-insensitive; the first spelling wins
        ("a=&a=2&a=3", {"a": "2,3"}),  # empty values are skipped in the join too
        ("q=a+b%2Cc", {"q": "a b,c"}),
    ],
)
def test_query_string_is_parsed_as_azure_does(http: httpx.Client, query: str, params: dict) -> None:
    response = http.get(f"/items/?{query}")
    assert response.status_code == 200
    assert response.json()["params"] == params


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/items/special", {"route": "special"}),
        ("/items/special/", {"route": "special"}),
        ("/Items/SPECIAL", {"route": "special"}),
        ("/items/42", {"route": "id", "id": "42"}),
        ("/items/by-name/abc/", {"route": "name", "name": "abc"}),
        ("/items/by-name/a%20b", {"route": "name", "name": "a b"}),
        ("/items/by-name/a%0Ab", {"route": "name", "name": "a\nb"}),  # routed, not starlette's own 404
    ],
)
def test_routes_match_literals_and_constraints(http: httpx.Client, path: str, expected: dict) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.json() == expected


@pytest.mark.parametrize("path", ["/items/%D9%A1%D9%A2", "/items/%EF%BC%91", "/items/abc"])
def test_int_constraint_takes_ascii_digits_only(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 404  # Arabic-Indic 12, full-width 1, letters


@pytest.mark.parametrize(("method", "path"), [("POST", "/items/7"), ("PUT", "/items"), ("DELETE", "/items/")])
def test_a_known_path_with_a_wrong_method_is_404_as_on_azure(
    http: httpx.Client, method: str, path: str
) -> None:
    response = http.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "allow" not in response.headers
    body = response.json()
    assert body["status"] == 404 and body["code"] == "not_found"
    assert {"type", "title", "detail"} <= body.keys()
    assert http.delete("/items/7").json() == {"route": "id", "id": "7"}  # the allowed method still works


@pytest.mark.parametrize("url", ["/nothing-here", "/items/1/2", "/nothing%0Ahere", "/items/by-name/a%0Ab/c"])
def test_unknown_path_is_problem_json_404(http: httpx.Client, url: str) -> None:
    response = http.get(url)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_paths_outside_the_route_prefix_are_404(host: HostProcess) -> None:
    response = httpx.get(host.url.removesuffix("/api") + "/items")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_function_error_is_a_generic_500_and_logged(http: httpx.Client, host: HostProcess) -> None:
    response = http.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    eventually(lambda: "RuntimeError: secret internal detail" in host.output())


def test_request_and_response_are_passed_through(http: httpx.Client) -> None:
    response = http.post("/echo/", content=b"payload", headers={"X-Sample": "yes"})
    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["method"] == "POST" and body["body"] == "payload" and body["header"] == "yes"
    assert body["url"].endswith("/api/echo/")
    assert body["function_name"] == "echo"
    assert uuid.UUID(body["invocation_id"])


def test_async_functions_are_awaited(http: httpx.Client) -> None:
    response = http.get("/async-hello", params={"who": "devhost"})
    assert response.text == "hello devhost"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_queue_messages_are_processed_exactly_once(host: HostProcess, storage: Azurite) -> None:
    run = uuid.uuid4().hex[:8]
    bodies = {f"{run}-{i}" for i in range(20)}
    client = queue(storage, sample_app.QUEUE)
    for body in bodies:
        client.send_message(body)

    def seen() -> list[dict]:
        return [r for r in records(storage, "queue") if r["body"].startswith(run)]

    eventually(lambda: len(seen()) >= len(bodies))
    time.sleep(2)  # longer than visibilityTimeout + polling: a redelivery would show by now
    got = seen()
    assert sorted(r["body"] for r in got) == sorted(bodies)
    assert {r["dequeue_count"] for r in got} == {1}
    assert client.get_queue_properties().approximate_message_count == 0


def test_failing_message_is_retried_then_poisoned(host: HostProcess, storage: Azurite) -> None:
    queue(storage, sample_app.QUEUE).send_message("fail")
    eventually(lambda: b64("fail") in poisoned(storage, sample_app.QUEUE))
    attempts = sorted(records(storage, "queue"), key=lambda r: r["dequeue_count"])
    attempts = [r for r in attempts if r["body"] == "fail"]
    assert [r["dequeue_count"] for r in attempts] == [1, 2, 3]  # maxDequeueCount 3
    times = [r.metadata["timestamp"] for r in attempts]
    assert all((b - a).total_seconds() >= 0.9 for a, b in pairwise(times))  # visibilityTimeout 1 s
    assert "ValueError: asked to fail" in host.output()


def test_body_that_is_not_base64_is_poisoned_without_running(host: HostProcess, storage: Azurite) -> None:
    text = f"not base64 {uuid.uuid4().hex}!"
    queue(storage, sample_app.QUEUE, base64_encoded=False).send_message(text)
    eventually(lambda: text in poisoned(storage, sample_app.QUEUE))
    assert not [r for r in records(storage, "queue") if text in r["body"]]
    assert "not valid base64" in host.output()


def test_an_http_function_past_function_timeout_answers_500(http: httpx.Client, host: HostProcess) -> None:
    started = time.monotonic()
    response = http.get("/sleep", params={"seconds": "6"})
    assert response.status_code == 500  # host.json functionTimeout is 3 s
    assert time.monotonic() - started < 5.5
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "Timeout value of 3s exceeded by function 'Functions.sleep'" in host.output()
    assert http.get("/sleep", params={"seconds": "0"}).status_code == 200


def test_a_queue_function_past_function_timeout_is_retried_then_poisoned(
    host: HostProcess, storage: Azurite
) -> None:
    body = f"sleep:5:{uuid.uuid4().hex[:8]}"
    queue(storage, sample_app.QUEUE).send_message(body)
    eventually(lambda: b64(body) in poisoned(storage, sample_app.QUEUE), timeout=40)
    attempts = sorted(r["dequeue_count"] for r in records(storage, "queue") if r["body"] == body)
    assert attempts == [1, 2, 3]  # not deleted on timeout: redelivered until maxDequeueCount


def test_a_missing_trigger_queue_is_polled_and_poison_is_created_on_demand(
    host: HostProcess, storage: Azurite
) -> None:
    assert not exists(storage, sample_app.LATE_QUEUE)  # devhost created nothing at start
    assert not exists(storage, f"{sample_app.LATE_QUEUE}-poison")
    late = queue(storage, sample_app.LATE_QUEUE)
    late.create_queue()  # as the app would, later
    late.send_message("hello")
    eventually(lambda: [r for r in records(storage, "late") if r["body"] == "hello"])
    assert not exists(storage, f"{sample_app.LATE_QUEUE}-poison")
    late.send_message("fail")
    eventually(lambda: b64("fail") in poisoned(storage, sample_app.LATE_QUEUE))
    assert "does not exist (yet)" in host.output()


def test_a_message_past_max_dequeue_count_is_poisoned_without_running(
    storage: Azurite, host_json: Path
) -> None:
    worn = f"devhost-worn-{uuid.uuid4().hex[:8]}"
    client = queue(storage, worn)
    client.create_queue()
    client.send_message("worn out")
    for _ in range(3):  # maxDequeueCount 3: received three times without being settled
        [message] = list(client.receive_messages(max_messages=1, visibility_timeout=1))
        time.sleep(1.1)
    assert message.dequeue_count == 3
    env = {"AzureWebJobsStorage": storage.connection_string, "SAMPLE_WORN_QUEUE": worn}
    with HostProcess(env, app="tests.devhost.sample_app:app", host_json=host_json) as own:
        eventually(lambda: b64("worn out") in poisoned(storage, worn))
        eventually(lambda: "dequeue count 4 exceeds maxDequeueCount; not run" in own.output())
    assert not [r for r in records(storage, "worn") if r["body"] == "worn out"]
    assert client.get_queue_properties().approximate_message_count == 0


def test_batches_run_concurrently_up_to_batch_size_plus_threshold(
    host: HostProcess, storage: Azurite
) -> None:
    run = uuid.uuid4().hex[:8]
    client = queue(storage, sample_app.SLOW_QUEUE)
    for i in range(10):
        client.send_message(f"{run}-{i}")

    def finished() -> list[dict]:
        return [r for r in records(storage, "slow-done") if r["body"].startswith(run)]

    runs = eventually(lambda: len(finished()) == 10 and finished(), timeout=30)
    overlap = max(sum(1 for o in runs if o["started"] <= r["started"] < o["finished"]) for r in runs)
    assert 2 <= overlap <= 6  # batchSize 4 + newBatchThreshold 2


def test_timer_ticks_every_second(host: HostProcess, storage: Azurite) -> None:
    before = len(records(storage, "tick"))
    time.sleep(3.2)
    assert len(records(storage, "tick")) - before >= 2
