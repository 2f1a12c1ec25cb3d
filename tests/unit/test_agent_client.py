"""The external agent service client: request, validation, retries, circuit breaker, secrecy."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from shared.agent.client import LIMITS, MAX_RESPONSE_BYTES, AgentApiClient, AgentUnavailable, CircuitBreaker
from tests.helpers import QuietHandler, serving

URL = "http://agent.test/analyse"
API_KEY = "sk-live-7f3c9a-do-not-leak"
TICKET = {
    "ticket_id": 42,
    "issue_type": "VPN keeps dropping",
    "description": "Since this morning the VPN disconnects every few minutes.",
    "category": "vpn",
    "tags": ["vpn", "remote"],
    "user": "alice",
    "status": "new",
    "priority": "medium",
    "created_at": "2025-01-01T00:00:00Z",
}
GOOD = {
    "confidence": 0.91,
    "recommended_action": "auto_resolve",
    "reasoning": "Known VPN MTU issue.",
    "analysis": {"severity": "low", "category": "vpn", "suggested_team": "network", "complexity": "low"},
    "solution": {
        "steps": ["Update the VPN client", "Reconnect"],
        "estimated_time": "10 minutes",
        "success_probability": 0.88,
    },
    "version": "agent-2.3.1",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Service:
    """A scripted agent service behind httpx.MockTransport; records every request."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply


def ok(body: Any = GOOD) -> httpx.Response:
    return httpx.Response(200, json=body)


def status(code: int) -> httpx.Response:
    return httpx.Response(code, json={"error": "nope"})


def client_for(
    service: Service,
    *,
    api_key: str = API_KEY,
    retries: int = 2,
    breaker: CircuitBreaker | None = None,
    sleeps: list[float] | None = None,
) -> AgentApiClient:
    record = sleeps if sleeps is not None else []
    return AgentApiClient(
        URL,
        api_key,
        timeout=3.0,
        retries=retries,
        backoff=0.5,
        breaker=breaker,
        transport=httpx.MockTransport(service),
        sleep=record.append,
    )


def failure(client: AgentApiClient) -> AgentUnavailable:
    with pytest.raises(AgentUnavailable) as caught:
        client.analyse(TICKET).as_dict()
    return caught.value


# --- request and answer ---------------------------------------------------------------------


def test_a_good_answer_comes_back_in_the_embedded_agents_shape() -> None:
    service = Service(ok())
    result = client_for(service).analyse(TICKET).as_dict()
    assert result == {
        "confidence": 0.91,
        "recommended_action": "auto_resolve",
        "reasoning": "Known VPN MTU issue.",
        "analysis": {"severity": "low", "category": "vpn", "suggested_team": "network", "complexity": "low"},
        "solution": {
            "steps": ["Update the VPN client", "Reconnect"],
            "estimated_time": "10 minutes",
            "success_probability": 0.88,
        },
        "knowledge_base_entries": [],
        "agent": {"kind": "external", "version": "agent-2.3.1"},
    }
    assert len(service.requests) == 1


def test_the_request_is_a_post_of_exactly_six_ticket_fields_with_the_api_key_and_timeout() -> None:
    service = Service(ok())
    client_for(service).analyse(TICKET).as_dict()
    request = service.requests[0]
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["X-API-Key"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "ticket_id": 42,
        "issue_type": "VPN keeps dropping",
        "description": "Since this morning the VPN disconnects every few minutes.",
        "category": "vpn",
        "tags": ["vpn", "remote"],
        "user": "alice",
    }
    assert request.extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}


def test_no_api_key_header_is_sent_when_the_key_is_empty() -> None:
    service = Service(ok())
    client_for(service, api_key="").analyse(TICKET).as_dict()
    assert "X-API-Key" not in service.requests[0].headers


def test_one_http_client_serves_every_call() -> None:
    service = Service(ok())
    client = client_for(service)
    http = client._client
    client.analyse(TICKET).as_dict()
    client.analyse(TICKET).as_dict()
    assert client._client is http and len(service.requests) == 2


def test_the_action_is_snake_cased_and_missing_parts_get_defaults() -> None:
    service = Service(ok({"confidence": 1, "recommended_action": "Assign To-Team", "model": "gpt-x"}))
    result = client_for(service).analyse(TICKET).as_dict()
    assert result["recommended_action"] == "assign_to_team"
    assert result["confidence"] == 1.0
    assert result["reasoning"] == ""
    assert result["analysis"] == {
        "severity": "medium",
        "category": "vpn",
        "suggested_team": None,
        "complexity": "medium",
    }
    assert result["solution"] == {"steps": [], "estimated_time": "unknown", "success_probability": 0.0}
    assert result["agent"] == {"kind": "external", "version": "gpt-x"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("autoResolve", "auto_resolve"),
        ("AUTO-RESOLVE", "auto_resolve"),
        (" Escalate ", "escalate"),
        ("request clarification", "request_clarification"),
    ],
)
def test_actions_are_normalised_to_lower_snake_case(given: str, expected: str) -> None:
    service = Service(ok({**GOOD, "recommended_action": given}))
    assert client_for(service).analyse(TICKET).as_dict()["recommended_action"] == expected


def test_an_answer_without_version_or_model_is_version_unknown_and_extras_are_ignored() -> None:
    body = {k: v for k, v in GOOD.items() if k != "version"} | {"trace": {"id": 1}}
    assert client_for(Service(ok(body))).analyse(TICKET).as_dict()["agent"] == {
        "kind": "external",
        "version": "unknown",
    }


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b"<html>oops</html>"),
        httpx.Response(200, json=[GOOD]),
        httpx.Response(204),
        ok({k: v for k, v in GOOD.items() if k != "confidence"}),
        ok({k: v for k, v in GOOD.items() if k != "recommended_action"}),
        ok({**GOOD, "confidence": 1.7}),
        ok({**GOOD, "confidence": -0.1}),
        ok({**GOOD, "confidence": "0.9"}),
        ok({**GOOD, "confidence": True}),
        ok({**GOOD, "recommended_action": "  "}),
        ok({**GOOD, "analysis": "critical"}),
        ok({**GOOD, "solution": {"steps": "reboot", "success_probability": 0.5}}),
        ok({**GOOD, "solution": {"steps": [], "success_probability": 2}}),
    ],
    ids=[
        "not-json",
        "list",
        "empty",
        "no-confidence",
        "no-action",
        "confidence-1.7",
        "negative",
        "string-confidence",
        "bool-confidence",
        "blank-action",
        "analysis-not-object",
        "steps-not-list",
        "probability-2",
    ],
)
def test_an_invalid_answer_is_unavailable_without_retry(reply: httpx.Response) -> None:
    service = Service(reply)
    sleeps: list[float] = []
    error = failure(client_for(service, sleeps=sleeps))
    assert error.reason == "invalid response"
    assert len(service.requests) == 1 and sleeps == []


# --- retries --------------------------------------------------------------------------------


def test_two_server_errors_then_success_retries_with_growing_delays() -> None:
    service = Service(status(500), status(502), ok())
    sleeps: list[float] = []
    result = client_for(service, sleeps=sleeps).analyse(TICKET).as_dict()
    assert result["confidence"] == 0.91
    assert len(service.requests) == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] < sleeps[1] <= 1.5


def test_a_service_that_keeps_failing_is_unavailable_after_one_plus_retries_requests() -> None:
    service = Service(status(500))
    sleeps: list[float] = []
    error = failure(client_for(service, retries=3, sleeps=sleeps))
    assert len(service.requests) == 4 and len(sleeps) == 3
    assert error.status_code == 500 and error.attempts == 4
    assert str(error) == "agent service unavailable: HTTP 500 after 4 attempts"


def test_too_many_requests_is_retried() -> None:
    service = Service(status(429), ok())
    assert client_for(service).analyse(TICKET).as_dict()["recommended_action"] == "auto_resolve"
    assert len(service.requests) == 2


def test_a_timeout_is_retried() -> None:
    service = Service(httpx.ReadTimeout("slow"), ok())
    assert client_for(service).analyse(TICKET).as_dict()["confidence"] == 0.91
    assert len(service.requests) == 2


def test_timeouts_every_time_are_unavailable_with_reason_timeout() -> None:
    service = Service(httpx.ReadTimeout("slow"))
    error = failure(client_for(service, retries=1))
    assert error.reason == "timeout" and len(service.requests) == 2


def test_a_connection_error_is_retried() -> None:
    service = Service(httpx.ConnectError("refused"), ok())
    assert client_for(service).analyse(TICKET).as_dict()["confidence"] == 0.91
    assert len(service.requests) == 2


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_a_client_error_is_not_retried(code: int) -> None:
    service = Service(status(code), ok())
    sleeps: list[float] = []
    error = failure(client_for(service, sleeps=sleeps))
    assert len(service.requests) == 1 and sleeps == []
    assert error.status_code == code and str(error) == f"agent service unavailable: HTTP {code}"


# --- a real socket ----------------------------------------------------------------------------


class SlowServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), SlowHandler)
        self.delay = delay
        self.hits = 0
        self.release = threading.Event()


class SlowHandler(QuietHandler):
    server: SlowServer

    def do_POST(self) -> None:
        self.server.hits += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.release.wait(self.server.delay)
        body = json.dumps(GOOD).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    with serving(SlowServer(delay=5.0)) as server:
        yield server
        server.release.set()


def test_a_real_server_slower_than_the_timeout_is_cut_off(slow_server: SlowServer) -> None:
    url = f"http://127.0.0.1:{slow_server.server_address[1]}/analyse"
    client = AgentApiClient(url, API_KEY, timeout=0.2, retries=1, sleep=lambda _: None)
    started = time.monotonic()
    with pytest.raises(AgentUnavailable) as caught:
        client.analyse(TICKET).as_dict()
    elapsed = time.monotonic() - started
    client.close()
    assert caught.value.reason == "timeout" and caught.value.attempts == 2
    assert slow_server.hits == 2
    assert elapsed < 2.0


def test_a_real_server_within_the_timeout_answers(slow_server: SlowServer) -> None:
    slow_server.delay = 0.0
    url = f"http://127.0.0.1:{slow_server.server_address[1]}/analyse"
    with AgentApiClient(url, API_KEY, timeout=2.0) as client:
        assert client.analyse(TICKET).as_dict()["agent"]["version"] == "agent-2.3.1"


def test_a_port_nobody_listens_on_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    client = AgentApiClient(
        f"http://127.0.0.1:{port}/analyse", API_KEY, timeout=1.0, retries=2, sleep=sleeps.append
    )
    with pytest.raises(AgentUnavailable) as caught:
        client.analyse(TICKET).as_dict()
    assert caught.value.reason.startswith("connection error")
    assert caught.value.attempts == 3 and len(sleeps) == 2


# --- circuit breaker --------------------------------------------------------------------------


def test_the_breaker_opens_after_consecutive_failed_calls_and_then_no_request_is_made() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_after=30, clock=Clock())
    service = Service(status(503))
    client = client_for(service, retries=1, breaker=breaker)
    for _ in range(3):
        assert failure(client).reason == "HTTP 503"
    assert breaker.state == "open"
    assert len(service.requests) == 6
    error = failure(client)
    assert error.reason == "circuit open" and str(error) == "agent service unavailable: circuit open"
    assert len(service.requests) == 6


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_after=30, clock=Clock())
    service = Service(status(400), ok(), status(400), ok())
    client = client_for(service, breaker=breaker)
    failure(client)
    client.analyse(TICKET).as_dict()
    failure(client)
    assert breaker.state == "closed"
    client.analyse(TICKET).as_dict()
    assert len(service.requests) == 4


def test_a_half_open_breaker_lets_one_trial_through_and_its_success_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after=30, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # only one trial at a time
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def half_open(reset_after: float) -> tuple[Clock, CircuitBreaker]:
    """A breaker opened by one failure, whose reset period has just run out."""
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=reset_after, clock=clock)
    breaker.record_failure()
    clock.now += reset_after
    return clock, breaker


def test_a_failed_trial_opens_the_breaker_again_for_another_reset_period() -> None:
    clock, breaker = half_open(10)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_lost_trial_does_not_keep_the_breaker_shut_for_ever() -> None:
    clock, breaker = half_open(10)
    assert breaker.allow()
    clock.now += 5
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()


def test_only_one_of_many_concurrent_callers_gets_the_half_open_trial() -> None:
    _, breaker = half_open(1)
    barrier = threading.Barrier(16)
    allowed: list[bool] = []

    def call() -> None:
        barrier.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1


def test_through_the_client_a_half_open_trial_success_closes_and_failure_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=30, clock=clock)
    service = Service(status(500), status(500), ok())
    client = client_for(service, retries=0, breaker=breaker)
    failure(client)
    assert failure(client).reason == "circuit open" and len(service.requests) == 1
    clock.now += 30
    assert failure(client).reason == "HTTP 500"  # the trial failed
    assert len(service.requests) == 2 and breaker.state == "open"
    assert failure(client).reason == "circuit open" and len(service.requests) == 2
    clock.now += 30
    assert client.analyse(TICKET).as_dict()["confidence"] == 0.91
    assert breaker.state == "closed" and len(service.requests) == 3


def test_an_invalid_answer_counts_as_a_failure_for_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_after=30, clock=Clock())
    client = client_for(Service(ok({"confidence": 1.7})), breaker=breaker)
    failure(client)
    failure(client)
    assert breaker.state == "open"


# --- secrecy and Sentry ----------------------------------------------------------------------


def echoes_key(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"error": f"bad key {request.headers['X-API-Key']}"})


@pytest.mark.parametrize(
    "reply",
    [
        status(500),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError(f"refused for {API_KEY}"),
        ok({**GOOD, "confidence": API_KEY}),
        httpx.Response(200, content=API_KEY.encode()),
    ],
    ids=["500", "timeout", "connect", "invalid-echo", "not-json-echo"],
)
def test_the_api_key_never_appears_in_errors_or_logs(reply: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    breaker = CircuitBreaker(failure_threshold=1, reset_after=30, clock=Clock())
    client = client_for(Service(reply), breaker=breaker)
    errors = [failure(client), failure(client)]  # the second one is "circuit open"
    assert errors[1].reason == "circuit open"
    assert caplog.records, "the failure must be logged"
    for error in errors:
        assert API_KEY not in str(error) and API_KEY not in repr(error.args)
        assert error.__cause__ is None and error.__context__ is None  # no chained httpx exception
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
    assert API_KEY not in caplog.text


def test_the_key_echoed_by_a_401_is_neither_raised_nor_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    service = Service(echoes_key)
    error = failure(client_for(service))
    assert error.status_code == 401 and API_KEY not in str(error)
    assert API_KEY not in caplog.text
    assert any(r.name == "resolvemeq.agent_api" for r in caplog.records)


class CaptureTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@pytest.fixture
def sentry_events() -> Iterator[list[dict[str, Any]]]:
    transport = CaptureTransport()
    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=transport, default_integrations=False)
    events: list[dict[str, Any]] = []
    yield events
    sentry_sdk.flush()
    sentry_sdk.init()  # no DSN: switch the client off for the tests that follow


def collect(events: list[dict[str, Any]]) -> None:
    client = sentry_sdk.get_client()
    transport = client.transport
    assert isinstance(transport, CaptureTransport)
    for envelope in transport.envelopes:
        for item in envelope.items:
            event = item.get_event()
            if event is not None:
                events.append(dict(event))


def test_a_failed_call_is_an_error_event_tagged_agent_api_without_the_key(
    sentry_events: list[dict[str, Any]],
) -> None:
    client = client_for(Service(status(503)), retries=1)
    sentry_sdk.add_breadcrumb(message="before", category="test")
    failure(client)
    collect(sentry_events)
    assert len(sentry_events) == 1
    event = sentry_events[0]
    assert event["level"] == "error"
    assert event["tags"]["component"] == "agent_api"
    assert event["contexts"]["agent_api"]["status_code"] == 503
    assert any(crumb.get("category") == "agent_api" for crumb in event["breadcrumbs"]["values"])
    assert API_KEY not in json.dumps(event, default=str)


def test_a_success_sends_no_event(sentry_events: list[dict[str, Any]]) -> None:
    client_for(Service(ok())).analyse(TICKET).as_dict()
    collect(sentry_events)
    assert sentry_events == []


# --- a bounded answer: size, time, string lengths ----------------------------------------------


class RawServer(socketserver.ThreadingTCPServer):
    """Answers every request with `reply(wfile)`: whatever bytes, at whatever pace."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, reply: Callable[[Any], None]) -> None:
        super().__init__(("127.0.0.1", 0), RawHandler)
        self.reply = reply
        self.hits = 0
        self.stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/analyse"


class RawHandler(socketserver.StreamRequestHandler):
    server: RawServer

    def handle(self) -> None:
        self.server.hits += 1
        length = 0
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.rfile.read(length)
        try:
            self.server.reply(self.wfile)
        except OSError:
            pass  # the client gave up: that is the point


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[Any], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(reply: Callable[[Any], None]) -> RawServer:
        server = RawServer(reply)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


def trickle(server_stop: Callable[[], threading.Event], head: bytes, every: float) -> Callable[[Any], None]:
    """Send `head` at once, then one byte every `every` seconds until stopped."""

    def reply(wfile: Any) -> None:
        wfile.write(head)
        wfile.flush()
        while not server_stop().wait(every):
            wfile.write(b" ")
            wfile.flush()

    return reply


def headers(length: int) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_server_trickling_bytes_hits_one_deadline_per_attempt(
    raw_server: Callable[[Callable[[Any], None]], RawServer], where: str
) -> None:
    # One byte every 0.3 s: each read is well within the 1 s timeout, so only a deadline per
    # attempt ends it (a body of 60,000 bytes would take five hours).
    head = headers(60_000) if where == "body" else b"HTTP/1.1 200 OK\r\nX-Slow: "
    holder: list[RawServer] = []
    server = raw_server(trickle(lambda: holder[0].stop, head, 0.3))
    holder.append(server)
    client = AgentApiClient(server.url, API_KEY, timeout=1.0, retries=1, sleep=lambda _: None)
    started = time.monotonic()
    with pytest.raises(AgentUnavailable) as caught:
        client.analyse(TICKET).as_dict()
    elapsed = time.monotonic() - started
    client.close()
    assert caught.value.reason == "timeout" and caught.value.attempts == 2
    assert server.hits == 2
    assert elapsed < 2 * 1.0 + 1.0


def test_an_answer_larger_than_64_kib_is_refused_while_streaming_and_not_retried(
    raw_server: Callable[[Callable[[Any], None]], RawServer],
) -> None:
    def chunked(wfile: Any) -> None:  # no Content-Length: only counting tells
        wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"pad": "' + b"x" * 8192
        for _ in range(128):  # 1 MiB
            wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        wfile.write(b"0\r\n\r\n")

    server = raw_server(chunked)
    sleeps: list[float] = []
    client = AgentApiClient(server.url, API_KEY, timeout=5.0, sleep=sleeps.append)
    with client, pytest.raises(AgentUnavailable) as caught:
        client.analyse(TICKET).as_dict()
    assert caught.value.reason == "response too large" and server.hits == 1 and sleeps == []


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    body = json.dumps({**GOOD, "pad": "x" * MAX_RESPONSE_BYTES}).encode()
    service = Service(httpx.Response(200, content=body, headers={"Content-Type": "application/json"}))
    assert failure(client_for(service)).reason == "response too large"
    assert len(service.requests) == 1


def test_an_answer_of_exactly_64_kib_is_accepted() -> None:
    base = json.dumps({**GOOD, "pad": ""}).encode()
    body = json.dumps({**GOOD, "pad": "x" * (MAX_RESPONSE_BYTES - len(base))}).encode()
    assert len(body) == MAX_RESPONSE_BYTES
    assert (
        client_for(Service(httpx.Response(200, content=body))).analyse(TICKET).as_dict()["confidence"] == 0.91
    )


def test_a_compressed_answer_is_refused_as_invalid_since_identity_was_asked() -> None:
    service = Service(
        httpx.Response(
            200, content=gzip.compress(json.dumps(GOOD).encode()), headers={"Content-Encoding": "gzip"}
        )
    )
    assert failure(client_for(service)).reason == "invalid response"
    assert service.requests[0].headers["Accept-Encoding"] == "identity"


def utf16_units(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-16-le")) // 2


def test_every_string_of_the_answer_is_clipped_so_an_analysis_fits_its_storage_row() -> None:
    hostile = {
        "confidence": 0.9,
        "recommended_action": "Auto Resolve " * 100,
        "reasoning": "\u0001\ud800" + '"' * 3000 + "r" * 15_000,
        "analysis": {
            "severity": "High" * 100,
            "category": "VPN" * 100,
            "suggested_team": "\U0001f600" * 200,
            "complexity": "x" * 1000,
        },
        "solution": {
            "steps": ['"\u0007' + '"' * 600 for _ in range(25)],
            "estimated_time": "t" * 1000,
            "success_probability": 0.9,
        },
        "version": "v" * 1000,
    }
    body = json.dumps(hostile).encode()  # escapes the lone surrogate, as a real service would
    assert len(body) <= MAX_RESPONSE_BYTES
    result = (
        client_for(Service(httpx.Response(200, content=json.dumps(hostile).encode())))
        .analyse(TICKET)
        .as_dict()
    )
    assert len(result["reasoning"]) == LIMITS["reasoning"] and "\u0001" not in result["reasoning"]
    assert "\ud800" not in result["reasoning"]
    assert len(result["recommended_action"]) <= LIMITS["recommended_action"]
    steps = result["solution"]["steps"]
    assert len(steps) <= LIMITS["steps"] and all(len(step) <= LIMITS["step"] for step in steps)
    assert sum(len(step) for step in steps) <= LIMITS["steps_total"]
    assert all("\u0007" not in step for step in steps)
    for value in (
        *result["analysis"].values(),
        result["solution"]["estimated_time"],
        result["agent"]["version"],
    ):
        assert len(value) <= LIMITS["short"]
    assert utf16_units(result) <= 14_000  # of the 32K a Table string property holds


def test_a_good_answer_is_not_altered_by_the_limits() -> None:
    result = client_for(Service(ok())).analyse(TICKET).as_dict()
    assert (
        result["reasoning"] == GOOD["reasoning"] and result["solution"]["steps"] == GOOD["solution"]["steps"]
    )
