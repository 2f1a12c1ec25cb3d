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
from tests.devhost.conftest import b64, eventually, poisoned, queue, records

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
    assert f"items_by_id: [GET] {host.url}/items/{{id:int}}" in out
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
    ("path", "expected"),
    [
        ("/items/special", {"route": "special"}),
        ("/items/special/", {"route": "special"}),
        ("/Items/SPECIAL", {"route": "special"}),
        ("/items/42", {"route": "id", "id": "42"}),
        ("/items/abc/", {"route": "name", "name": "abc"}),
        ("/items/a%20b", {"route": "name", "name": "a b"}),
    ],
)
def test_literal_beats_constrained_beats_plain_parameter(
    http: httpx.Client, path: str, expected: dict
) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.json() == expected


def test_method_not_allowed_is_problem_json_with_allow(http: httpx.Client) -> None:
    response = http.post("/items/abc", json={})
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "DELETE, GET"
    body = response.json()
    assert body["status"] == 405 and body["code"] == "method_not_allowed"
    assert {"type", "title", "detail"} <= body.keys()


@pytest.mark.parametrize("url", ["/nothing-here", "/items/1/2"])
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


def test_body_that_is_not_base64_fails_and_is_poisoned(host: HostProcess, storage: Azurite) -> None:
    text = f"not base64 {uuid.uuid4().hex}!"
    queue(storage, sample_app.QUEUE, base64_encoded=False).send_message(text)
    eventually(lambda: text in poisoned(storage, sample_app.QUEUE))
    assert not [r for r in records(storage, "queue") if text in r["body"]]
    assert "not valid base64" in host.output()


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
