"""Structured logs: one JSON object a line, carrying the invocation id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared import observability
from shared.agent.client import AgentApiClient, AgentUnavailable
from tests.helpers import QuietHandler, local_server, serving, url_of


def test_log_lines_are_json_with_the_invocation_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    handler.addFilter(observability.InvocationFilter())
    logger = logging.getLogger("test.structured")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with observability.invocation("inv-42", "tickets_get"):
            logger.info("ticket %s read", 7, extra={"fields": {"ticket_id": 7}})
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["invocation_id"] == "inv-42" and inside["message"] == "ticket 7 read"
    assert inside["ticket_id"] == 7 and inside["level"] == "INFO" and inside["logger"] == "test.structured"
    assert outside["invocation_id"] == "-"


class KeyedAgent(QuietHandler):
    """An agent service that answers 200, 500 or nothing at all, by path."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if self.path.startswith("/fail") else 200
        body = json.dumps({"confidence": 0.9, "recommended_action": "escalate"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def agent_service() -> Iterator[str]:
    server = local_server(KeyedAgent)
    server.daemon_threads = True
    with serving(server):
        yield url_of(server)


@pytest.mark.parametrize("path", ["/analyse", "/fail"])
def test_an_agent_url_with_a_key_in_its_query_is_never_logged(
    agent_service: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = "fn-key-3b9d71c0e5aa"
    observability.configure_logging()
    caplog.set_level(logging.DEBUG)  # the root at DEBUG: only the library loggers' own levels hold
    client = AgentApiClient(
        f"{agent_service}{path}?code={key}", "", timeout=2.0, retries=1, sleep=lambda _: None
    )
    try:
        client.analyse({"ticket_id": 1, "description": "x"}).as_dict()
    except AgentUnavailable as error:
        assert key not in str(error)
    finally:
        client.close()
    assert caplog.records if path == "/fail" else True
    assert key not in caplog.text
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
