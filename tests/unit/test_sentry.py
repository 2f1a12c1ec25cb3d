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
