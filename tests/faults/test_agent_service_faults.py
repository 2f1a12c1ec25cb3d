"""The external agent service (AGENT_API_URL) slow, failing, down and recovering, played by a
local stand-in the test controls ticket by ticket.

The client (shared/agent/client.py) tries each call 3 times (0.5 s, 1 s backoff) under a
circuit breaker (5 failed calls open it for 30 s); a call that still fails sends the request
back to the queue after AGENT_RETRY_SECONDS, then twice and four times that, and then defers
the ticket to humans (`agent_unavailable`). The breaker is part of what is under test: after
the service recovers, tickets are processed again once it lets a trial call through.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from devhost.azurite import free_port
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.e2e.test_agent_e2e import RESET, done_count
from tests.faults.support import (
    AUTONOMOUS,
    assert_aggregates_consistent,
    assert_exactly_once,
    audit,
    wait_settled,
)
from tests.helpers import QuietHandler

TIMEOUT = 1  # AGENT_API_TIMEOUT_SECONDS: "slow" answers after 3 s
RETRY = 1  # AGENT_RETRY_SECONDS: retried after 1, 2 and 4 s, then deferred
ANSWER = {
    "confidence": 0.95,
    "recommended_action": "auto_resolve",
    "reasoning": "Password reset.",
    "analysis": {"severity": "low", "category": "account"},
    "solution": {"steps": ["Reset it"], "success_probability": 0.95},
}


class StandIn(ThreadingHTTPServer):
    """The agent service: each ticket follows a script of behaviours, one per call (the last
    repeats): `ok`, `slow` (the answer after 3 s), `fail` (500), `drop` (closes the connection)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, scripts: dict[int, list[str]], calls: dict[int, list[tuple[float, str]]]):
        self.scripts, self.calls, self.lock = scripts, calls, threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def behaviour(self, ticket_id: int) -> str:
        with self.lock:
            script = self.scripts.get(ticket_id, ["ok"])
            seen = self.calls[ticket_id]
            mode = script[min(len(seen), len(script) - 1)]
            seen.append((time.monotonic(), mode))
            return mode

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(QuietHandler):
    server: StandIn

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = self.server.behaviour(int(body["ticket_id"]))
        if mode == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if mode == "fail":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "slow":
            time.sleep(3 * TIMEOUT)
        payload = json.dumps(ANSWER).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a slow answer the client stopped waiting for


def outcome(stack: Stack, ticket_id: int) -> tuple[str, Any] | None:
    entries = audit(stack).agent_entries(ticket_id)
    if not entries:
        return None
    assert len(entries) == 1, entries
    return entries[0].action_type.value, entries[0].action_params.get("reason")


@pytest.mark.timeout(180)
def test_the_agent_service_slow_failing_down_and_recovering(stack: Stack) -> None:
    port = free_port()
    scripts: dict[int, list[str]] = {}
    calls: dict[int, list[tuple[float, str]]] = defaultdict(list)
    service: StandIn | None = StandIn(port, scripts, calls)
    host = stack.host(
        AGENT_API_URL=f"http://127.0.0.1:{port}/analyse",
        AGENT_API_TIMEOUT_SECONDS=TIMEOUT,
        AGENT_RETRY_SECONDS=RETRY,
        AGENT_CLAIM_SECONDS=5,
        AGENT_ACTIONS_THROTTLE_RATE="100000/minute",
    )
    accepted: dict[str, int] = {}
    tickets: list[int] = []

    def submit(script: list[str] | None = None) -> int:
        tid = create_ticket(api, "alice", **RESET)["id"]
        if script:
            scripts[tid] = script
        response = api.post(f"/tickets/{tid}/process/", headers=bearer("alice"))
        assert response.status_code == 202, response.text
        accepted[response.json()["request_id"]] = tid
        tickets.append(tid)
        return tid

    try:
        with stack.client(host) as api:
            # 1. Hiccups the client's own retries absorb: a timeout, two 500s, a dropped connection.
            slow_once, failing_twice, dropped = (
                submit(["slow", "ok"]),
                submit(["fail", "fail", "ok"]),
                submit(["drop", "ok"]),
            )
            wait_until(lambda: done_count(stack) == 3, timeout=30)
            for tid, script in (
                (slow_once, ["slow", "ok"]),
                (failing_twice, ["fail", "fail", "ok"]),
                (dropped, ["drop", "ok"]),
            ):
                assert outcome(stack, tid) == ("AUTO_RESOLVE", None), tid
                # the script played out (on a loaded machine an "ok" may itself be late: tried again)
                assert [mode for _, mode in calls[tid]][: len(script)] == script, calls[tid]

            # 2. Failing for good (500s; answers slower than the timeout): retried, then deferred.
            started = time.monotonic()
            failing, slow = submit(["fail"]), submit(["slow"])
            wait_until(lambda: done_count(stack) == 5, timeout=60)
            waited = time.monotonic() - started
            for tid in (failing, slow):
                assert outcome(stack, tid) == ("DEFER_TO_HUMAN", "agent_unavailable")
            assert waited >= RETRY * (1 + 2 + 4), waited  # the queued retries were waited for
            log = host.output()
            for delay in (RETRY, 2 * RETRY, 4 * RETRY):
                assert f"agent unavailable for ticket {failing}; trying again in {delay} s" in log
            assert len(calls[failing]) >= 3  # the first call's three tries reached the service

            # 3. Down (the port closed): deferred the same way.
            service.close()
            service = None
            down = submit()
            wait_until(lambda: done_count(stack) == 6, timeout=60)
            assert outcome(stack, down) == ("DEFER_TO_HUMAN", "agent_unavailable")
            assert not calls[down]

            # 4. Back: once the breaker lets a trial through, new tickets are processed again.
            service = StandIn(port, scripts, calls)
            recovered = time.monotonic()

            def resolved_one() -> bool:
                tid = submit()
                wait_until(lambda: outcome(stack, tid) is not None, timeout=30)
                return outcome(stack, tid) == ("AUTO_RESOLVE", None)

            wait_until(resolved_one, timeout=75, every=1)
            print(f"processing again {time.monotonic() - recovered:.1f} s after the service came back")
            after = [submit() for _ in range(3)]
            wait_until(lambda: all(outcome(stack, t) is not None for t in after), timeout=30)
            assert all(outcome(stack, t) == ("AUTO_RESOLVE", None) for t in after)

        found = wait_settled(stack)
        assert_exactly_once(found, tickets, accepted)
        for tid in tickets:  # an answer that came too late was never acted on as well
            [entry] = found.agent_entries(tid)
            assert entry.action_type in AUTONOMOUS or entry.action_params["reason"] == "agent_unavailable"
        assert_aggregates_consistent(stack)
    finally:
        if service is not None:
            service.close()
