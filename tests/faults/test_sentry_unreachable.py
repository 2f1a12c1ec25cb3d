"""Sentry unreachable: a DSN on a closed port, and one on a server that takes the connection and
never answers. Every request is still answered (none 5xx), the agent's failures (each one an
event) still end in a deferral, and each host still stops on SIGINT by itself."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devhost.azurite import free_port
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.e2e.test_agent_e2e import RESET, STAFF, done_count
from tests.faults.support import assert_aggregates_consistent, assert_exactly_once, wait_settled

PER_HOST = 6


@contextmanager
def never_answering() -> Iterator[tuple[int, list[socket.socket]]]:
    """A port that accepts connections, reads what comes and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)  # kept open, never written to

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], held
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


@pytest.mark.timeout(240)
def test_requests_are_answered_while_sentry_is_unreachable(stack: Stack) -> None:
    with never_answering() as (silent_port, held):
        common = {
            "SENTRY_TRACES_SAMPLE_RATE": "1.0",  # a transaction per invocation, besides the error events
            "AGENT_API_URL": f"http://127.0.0.1:{free_port()}/analyse",  # down: an event per failed call
            "AGENT_API_TIMEOUT_SECONDS": 1,
            # 1 s, not 0: a retry copy sent with no delay can meet its own request's claim (the
            # worker sends the copy, then releases the claim) and wait for it to expire
            "AGENT_RETRY_SECONDS": 1,
            "AGENT_CLAIM_SECONDS": 3,
            "AGENT_ACTIONS_THROTTLE_RATE": "100000/minute",
        }
        hosts = {
            "closed port": stack.host(SENTRY_DSN=f"http://public@127.0.0.1:{free_port()}/1", **common),
            "never answers": stack.host(SENTRY_DSN=f"http://public@127.0.0.1:{silent_port}/1", **common),
        }
        accepted: dict[str, int] = {}
        ids: list[int] = []
        codes: Counter[int] = Counter()
        for name, host in hosts.items():
            with stack.client(host) as api:  # 30 s per request: past it, the request hung
                mine = [create_ticket(api, f"{name[0]}{i % 3}", **RESET)["id"] for i in range(PER_HOST)]
                for i, tid in enumerate(mine):
                    response = api.post(f"/tickets/{tid}/process/", headers=bearer(f"{name[0]}{i % 3}"))
                    assert response.status_code == 202, (name, response.text)
                    accepted[response.json()["request_id"]] = tid
                ids += mine
                for path in [f"/tickets/{mine[0]}/", "/tickets/", f"/tickets/{mine[0]}/action-history/"] * 3:
                    codes[api.get(path, headers=STAFF).status_code] += 1
                codes[api.get("/tickets/999999/", headers=STAFF).status_code] += 1
                codes[api.post("/tickets/", json={"nope": 1}, headers=STAFF).status_code] += 1
                codes[api.get("/health/").status_code] += 1
        assert not [c for c in codes if c >= 500], codes
        print(f"answered {sum(codes.values())} reads and {len(accepted)} process requests: {dict(codes)}")
        wait_until(lambda: done_count(stack) == len(ids), timeout=150)  # a bound, not a speed
        found = wait_settled(stack)
        assert_exactly_once(found, ids, accepted)
        for tid in ids:
            [entry] = found.agent_entries(tid)
            assert entry.action_params["reason"] == "agent_unavailable"
        assert held, "the SDK never tried the server that never answers: the test proved nothing"

        for name, host in hosts.items():  # a flush that cannot finish must not hold the shutdown
            assert host.process is not None
            started = time.monotonic()
            host.process.send_signal(signal.SIGINT)
            try:
                host.process.wait(20)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the host with Sentry on a {name} did not stop on SIGINT within 20 s")
            print(f"the host with Sentry on a {name} stopped in {time.monotonic() - started:.1f} s")
        assert_aggregates_consistent(stack)
