"""A real Sentry event, sent to a local capture server: tags, user, and scrubbed secrets."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from shared import observability
from shared.config import Settings
from shared.container import Container, use_container
from shared.storage.memory import InMemoryTicketRepository
from tests.conftest import SECRET, token
from tests.unit.http_client import invoke, payload


class CaptureServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CaptureHandler)
        self.envelopes: list[bytes] = []


class CaptureHandler(BaseHTTPRequestHandler):
    server: CaptureServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.envelopes.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


class BrokenRepository(InMemoryTicketRepository):
    def get(self, ticket_id: int) -> None:
        raise RuntimeError("storage exploded")


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    sentry_sdk.init()  # no DSN: switch the client off for the tests that follow
    observability._sentry_on = False


def events(server: CaptureServer) -> list[dict]:
    found = []
    for envelope in server.envelopes:
        for line in envelope.splitlines():
            item = json.loads(line) if line.startswith(b"{") else None
            if item and "event_id" in item and "exception" in item:
                found.append(item)
    return found


def test_an_unhandled_error_reaches_sentry_tagged_and_scrubbed(capture: CaptureServer) -> None:
    port = capture.server_address[1]
    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET, SENTRY_DSN=f"http://public@127.0.0.1:{port}/1", ENVIRONMENT="local"
    )
    assert observability.init_sentry(settings)
    use_container(Container.in_memory(settings, tickets=BrokenRepository()))
    bearer_token = token("alice")
    try:
        response = invoke(
            "tickets_get", headers={"Authorization": f"Bearer {bearer_token}"}, route={"id": "7"}
        )
    finally:
        use_container(None)
    assert response.status_code == 500 and payload(response)["code"] == "internal_error"
    [event] = events(capture)
    assert event["tags"]["function"] == "tickets_get"
    assert event["tags"]["invocation_id"] == "test-invocation"
    assert event["user"]["id"] == "alice"
    assert event["environment"] == "local"
    headers = {k.lower(): v for k, v in event["request"]["headers"].items()}
    assert headers["authorization"] == "[Filtered]"
    raw = b"".join(capture.envelopes).decode()
    assert bearer_token not in raw and SECRET not in raw
    assert "storage exploded" in raw  # the event itself was kept, only secrets removed


def queue_call(name: str, body: dict) -> None:
    import json as _json

    import azure.functions as func

    from tests.unit.http_client import REGISTERED, Context

    [fn] = [f.get_user_function() for f in REGISTERED if f.get_function_name() == name]
    fn(func.QueueMessage(id="m1", body=_json.dumps(body).encode()), Context())


def sentry_items(server: CaptureServer) -> list[dict]:
    items = []
    for envelope in server.envelopes:
        for line in envelope.splitlines():
            if line.startswith(b"{"):
                items.append(json.loads(line))
    return items


def test_autonomous_actions_send_confidence_metrics_and_failures_as_tagged_errors(
    capture: CaptureServer,
) -> None:
    from shared.domain.models import Principal, TicketCreate

    port = capture.server_address[1]
    settings = Settings(AUTH_JWT_SECRET=SECRET, SENTRY_DSN=f"http://public@127.0.0.1:{port}/1")  # type: ignore[call-arg]
    assert observability.init_sentry(settings)
    container = Container.in_memory(settings)
    use_container(container)
    try:
        alice = Principal(sub="alice")
        reset = TicketCreate(
            issue_type="Password reset", description="I forgot my password, please reset it."
        )
        ticket = container.ticket_service.create(alice, reset)
        queue_call("agent_run", {"ticket_id": ticket.id, "request_id": "r1", "requested_by": "alice"})
        with pytest.raises(ValueError):
            queue_call("agent_run", {"ticket_id": "not-a-number"})
        sentry_sdk.flush(timeout=5)
    finally:
        use_container(None)
    items = sentry_items(capture)
    metrics = [m for item in items for m in item.get("items", []) if m.get("name") == "agent.confidence"]
    assert metrics, items
    attributes = {k: v["value"] for k, v in metrics[0]["attributes"].items()}
    assert attributes["component"] == "autonomous_agent" and attributes["action_type"] == "AUTO_RESOLVE"
    assert attributes["confidence_level"] == "high" and metrics[0]["value"] >= 0.8
    errors = [i for i in items if "exception" in i]
    assert len(errors) == 1 and errors[0]["tags"]["function"] == "agent_run"
    assert errors[0]["tags"]["component"] == "autonomous_agent" and errors[0]["tags"]["outcome"] == "failed"


def test_a_sentry_outage_never_fails_a_request() -> None:
    from devhost.azurite import free_port

    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET, SENTRY_DSN=f"http://public@127.0.0.1:{free_port()}/1"
    )
    assert observability.init_sentry(settings)
    use_container(Container.in_memory(settings, tickets=BrokenRepository()))
    try:
        headers = {"Authorization": f"Bearer {token('alice')}"}
        failed = invoke("tickets_get", headers=headers, route={"id": "7"})
        use_container(Container.in_memory(settings))
        created = invoke("tickets_create", "POST", json_body={"issue_type": "x"}, headers=headers)
    finally:
        use_container(None)
        sentry_sdk.init()
        observability._sentry_on = False
    assert failed.status_code == 500 and payload(failed)["code"] == "internal_error"
    assert created.status_code == 201
