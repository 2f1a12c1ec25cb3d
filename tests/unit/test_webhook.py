"""The chat webhook adapter against local servers: the body, bounded retries, bounded time."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import pytest

from shared.notify.webhook import HttpWebhook
from tests.helpers import QuietHandler, local_server, serving, url_of


class Receiver(QuietHandler):
    """Answers each POST with the next status of the server's script (then 200); keeps the bodies."""

    def do_POST(self) -> None:
        server: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.received.append((self.path, self.headers.get("Content-Type"), body))
        status = server.script.pop(0) if server.script else 200
        if status == "trickle":
            self.send_response(200)
            try:
                for _ in range(25):  # a header byte every 0.2 s: 5 s in all
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up, as it should
            return
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def receiver(*script: int | str) -> Any:
    server: Any = local_server(Receiver)
    server.daemon_threads = True
    server.received, server.script = [], list(script)
    return server


def no_sleep(_: float) -> None:
    pass


def test_it_posts_the_text_as_slack_and_teams_read_it() -> None:
    with serving(receiver()) as server:
        assert HttpWebhook(url_of(server, "/hooks/T1/B2/secret")).post("Is everything still working? #4")
    [(path, content_type, body)] = server.received
    assert path == "/hooks/T1/B2/secret" and content_type == "application/json"
    assert json.loads(body) == {"text": "Is everything still working? #4"}


def test_a_server_error_or_429_is_retried_a_bounded_number_of_times() -> None:
    with serving(receiver(500, 429)) as server:
        assert HttpWebhook(url_of(server), sleep=no_sleep).post("hi")
    assert len(server.received) == 3
    with serving(receiver(503, 503, 503, 503)) as server:
        assert not HttpWebhook(url_of(server), attempts=3, sleep=no_sleep).post("hi")
    assert len(server.received) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_a_refusal_is_not_retried(status: int) -> None:
    with serving(receiver(status)) as server:
        assert not HttpWebhook(url_of(server), sleep=no_sleep).post("hi")
    assert len(server.received) == 1


def test_a_closed_port_fails_quickly_without_raising_or_logging_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/hooks/secret-token"
    waits: list[float] = []
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        assert not HttpWebhook(url, sleep=waits.append).post("hi")
    assert time.monotonic() - start < 2
    assert waits == [0.5, 1.0]  # three attempts, backing off
    assert "secret-token" not in caplog.text and "webhook post failed after 3 attempt(s)" in caplog.text


def test_a_server_that_trickles_its_answer_is_cut_off_at_the_deadline() -> None:
    with serving(receiver("trickle", "trickle")) as server:
        start = time.monotonic()
        assert not HttpWebhook(url_of(server), timeout=1.0, attempts=2, sleep=no_sleep).post("hi")
        took = time.monotonic() - start
    assert took < 4  # two attempts of 1 s each, not the 5 s each the server would take
