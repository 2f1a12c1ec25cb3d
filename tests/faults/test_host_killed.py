"""A host SIGKILLed while it executes a batch of process requests; a second host finishes it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.e2e.test_agent_e2e import RESET, done_count
from tests.faults.support import (
    assert_aggregates_consistent,
    assert_caps_exact,
    assert_exactly_once,
    audit,
    wait_settled,
)

TICKETS = 120
CAP = 40
SETTINGS = {
    "DEVHOST_QUEUE_LEASE_SECONDS": 4,  # what the killed host held comes back within seconds
    "AGENT_CLAIM_SECONDS": 2,  # and so do the claims it left
    "AGENT_ACTIONS_THROTTLE_RATE": "100000/minute",
    "MAX_AUTONOMOUS_ACTIONS_PER_HOUR": CAP,
}


@pytest.mark.timeout(180)
def test_a_host_killed_mid_batch_loses_nothing_doubles_nothing_and_keeps_the_cap(stack: Stack) -> None:
    first = stack.host(**SETTINGS)
    with stack.client(first) as api, ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda i: create_ticket(api, f"u{i % 12}", **RESET)["id"], range(TICKETS)))
        owners = {tid: f"u{i % 12}" for i, tid in enumerate(ids)}
        responses = list(
            pool.map(lambda t: api.post(f"/tickets/{t}/process/", headers=bearer(owners[t])), ids)
        )
    assert [r.status_code for r in responses] == [202] * TICKETS, {r.status_code for r in responses}
    accepted = {r.json()["request_id"]: r.json()["ticket_id"] for r in responses}
    wait_until(lambda: done_count(stack) >= 10, timeout=60, every=0.05)
    first.kill()  # SIGKILL to the PID we started: no clean-up of any kind runs
    at_kill = audit(stack)
    done = sum(t.agent_processed for t in at_kill.tickets.values())
    claims = sum(r.status == "INPROGRESS" for rs in at_kill.records.values() for r in rs.values())
    print(f"killed with {done}/{TICKETS} processed and {claims} claim(s) in progress")
    assert done < TICKETS, "the kill must land mid-batch"

    started = time.monotonic()
    second = stack.host(**SETTINGS)
    with stack.client(second) as api:
        wait_until(lambda: done_count(stack) == TICKETS, timeout=90, every=0.5)
    print(f"the second host finished the batch in {time.monotonic() - started:.1f} s")
    found = wait_settled(stack)
    assert_exactly_once(found, ids, accepted)
    assert_caps_exact(found, CAP)
    acted = sum(len(found.agent_entries(t)) for t in ids)
    assert acted == TICKETS  # one change per ticket: an action or a deferral, never two
    assert_aggregates_consistent(stack)
