"""Through the local host: with storage gone, what reaches Sentry holds no secret, no ticket
text and no client data, and every request still gets a problem+json answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from shared.storage.clients import DEV_KEY
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.unit.test_sentry import (
    AGENT_KEY,
    CLIENT_HEADERS,
    DESCRIPTION,
    ISSUE,
    NEVER_SENT,
    CaptureServer,
)


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def error_events(server: CaptureServer) -> list[bytes]:
    return [envelope for envelope in server.envelopes if b'"exception"' in envelope]


def test_a_storage_outage_sends_scrubbed_events_and_answers_problem_json(
    stack: Stack, capture: CaptureServer
) -> None:
    host = stack.host(SENTRY_DSN=capture.dsn, AGENT_API_KEY=AGENT_KEY)
    alice = {**bearer("alice"), **CLIENT_HEADERS}
    with stack.client(host) as api:
        api.timeout = 120
        ticket = create_ticket(api, "alice", issue_type=ISSUE, description=DESCRIPTION)
        stack.emulator.stop()
        calls = [
            ("GET", f"/tickets/{ticket['id']}/", None),
            ("POST", "/tickets/", {"issue_type": ISSUE, "description": DESCRIPTION}),
            ("POST", f"/tickets/{ticket['id']}/process/", {}),
            ("GET", "/tickets/", None),
        ]
        for method, path, body in calls:
            started = time.monotonic()
            response = api.request(method, path, json=body, headers=alice)
            elapsed = time.monotonic() - started
            print(f"{method} {path}: {response.status_code} in {elapsed:.2f} s")
            assert response.status_code >= 500, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert DESCRIPTION not in response.text and DEV_KEY not in response.text
    wait_until(lambda: len(error_events(capture)) >= len(calls), timeout=30)
    raw = b"".join(capture.envelopes).decode(errors="replace")
    tokens = [value.split()[-1] for value in (alice["Authorization"],)]
    leaked = [secret for secret in (*NEVER_SENT, DEV_KEY, *tokens) if secret in raw]
    assert not leaked, f"{leaked} reached Sentry"
