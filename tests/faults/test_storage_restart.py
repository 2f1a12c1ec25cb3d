"""Azurite stopped and started again while two hosts run and the agent works through a batch.

Azurite here keeps its data on disk (`--location`, not `--inMemoryPersistence`): stopped with
SIGTERM it saves, and started again on the same ports it has the same tables and queues, as a
storage account that was unreachable for a while. (An in-memory Azurite would come back empty,
which tests the app's re-provisioning, not recovery: tests/e2e/test_outage_and_settings_e2e.py.)
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import bearer
from tests.e2e.conftest import create_ticket, wait_until
from tests.e2e.test_agent_e2e import RESET, done_count
from tests.faults.support import (
    DiskStack,
    assert_aggregates_consistent,
    assert_exactly_once,
    wait_settled,
)

TICKETS = 60
SETTINGS = {
    "AGENT_ACTIONS_THROTTLE_RATE": "100000/minute",
    "AGENT_CLAIM_SECONDS": 3,  # a claim whose release was lost in the outage expires soon after
    "DEVHOST_QUEUE_LEASE_SECONDS": 5,  # a message whose release was lost comes back soon after
}
PROBLEM = {"Accept": "application/problem+json"}


@pytest.mark.timeout(180)
def test_storage_down_then_back_answers_503_meanwhile_and_loses_nothing(disk_stack: DiskStack) -> None:
    stack = disk_stack
    hosts = [stack.host(**SETTINGS), stack.host(**SETTINGS)]
    clients = [httpx.Client(base_url=h.url, timeout=30) for h in hosts]
    try:
        with ThreadPoolExecutor(16) as pool:
            ids = list(
                pool.map(lambda i: create_ticket(clients[i % 2], f"u{i % 6}", **RESET)["id"], range(TICKETS))
            )
            owners = {tid: f"u{i % 6}" for i, tid in enumerate(ids)}
            responses = list(
                pool.map(
                    lambda n: clients[n % 2].post(
                        f"/tickets/{ids[n]}/process/", headers=bearer(owners[ids[n]])
                    ),
                    range(TICKETS),
                )
            )
        assert [r.status_code for r in responses] == [202] * TICKETS
        accepted = {r.json()["request_id"]: r.json()["ticket_id"] for r in responses}
        wait_until(lambda: done_count(stack) >= 5, timeout=60, every=0.05)
        before = done_count(stack)
        stack.stop_storage()  # mid-batch: workers are between claims, commits and deletes
        assert before < TICKETS, "the outage must land mid-batch"
        print(f"storage stopped with {before}/{TICKETS} processed")
        outage = time.monotonic()

        alice = {**PROBLEM, **bearer(owners[ids[0]])}
        calls = [
            ("POST", "/tickets/", {"issue_type": "During the outage"}),
            ("GET", f"/tickets/{ids[0]}/", None),
            ("GET", "/tickets/", None),
            ("POST", f"/tickets/{ids[1]}/process/", None),
            ("GET", f"/tickets/{ids[0]}/action-history/", None),
        ]
        answers = []
        for round_ in range(2):
            for n, (method, path, body) in enumerate(calls):
                started = time.monotonic()
                response = clients[(n + round_) % 2].request(method, path, json=body, headers=alice)
                answers.append((method, path, response.status_code, time.monotonic() - started))
                assert response.status_code == 503, (method, path, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["code"] == "storage_unavailable"
                assert int(response.headers["Retry-After"]) > 0
        print(f"outage: {len(answers)} answers, slowest {max(a[3] for a in answers):.2f} s")
        time.sleep(max(0.0, 4 - (time.monotonic() - outage)))  # the pollers meet the outage too

        stack.restart_storage()  # the same data on the same ports
        print(f"storage back after {time.monotonic() - outage:.1f} s")
        wait_until(lambda: done_count(stack) == TICKETS, timeout=90, every=0.5)
        found = wait_settled(stack)
        assert set(found.tickets) >= set(ids)
        assert_exactly_once(found, ids, accepted)

        # New work after the outage: creates and processes on both hosts
        fresh = [create_ticket(clients[i % 2], "v", **RESET)["id"] for i in range(4)]
        for i, tid in enumerate(fresh):
            assert clients[i % 2].post(f"/tickets/{tid}/process/", headers=bearer("v")).status_code == 202
        wait_until(lambda: done_count(stack) == TICKETS + len(fresh), timeout=60, every=0.5)
        found = wait_settled(stack)
        assert_exactly_once(found, [*ids, *fresh], accepted)
        assert all(len(found.agent_entries(t)) == 1 for t in fresh)
        assert_aggregates_consistent(stack)
    finally:
        for client in clients:
            client.close()
