"""The analytics write side end to end, on real hosts and Azurite: concurrent events over two
host processes count exactly (the recompute finds nothing), and a record lost between a commit and
its record (the analytics table gone) is repaired by a redelivery and by `manage analytics
recompute`."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.domain.tally import total
from shared.storage.names import AGENT_QUEUE, ANALYTICS
from shared.storage.tables.analytics import TableAnalytics
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until

STAFF = bearer("sam", "staff")
RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}
SETTINGS = {"AGENT_ACTIONS_THROTTLE_RATE": "100000/minute", "MAX_AUTONOMOUS_ACTIONS_PER_HOUR": 100000,
            "MAX_AUTONOMOUS_ACTIONS_PER_DAY": 100000}  # fmt: skip


def figures(stack: Stack) -> dict[str, int]:
    today = datetime.now(UTC).date()
    store = TableAnalytics(stack.storage.table(ANALYTICS))
    while store.fold(1000):  # as the sweeper does: the reads see folded events only
        pass
    return dict(total(store.read(today - timedelta(days=1), today + timedelta(days=1))))


def recompute(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "manage", "analytics", "recompute", *args],
        env=stack.env(**SETTINGS),
        capture_output=True,
        text=True,
        timeout=120,
    )


def processed(api: httpx.Client, ids: list[int]) -> bool:
    return all(api.get(f"/tickets/{i}/", headers=STAFF).json()["agent_processed"] for i in ids)


def test_100_concurrent_events_over_two_hosts_count_exactly(stack: Stack) -> None:
    hosts = [stack.host(**SETTINGS), stack.host(**SETTINGS)]
    clients = [stack.client(h) for h in hosts]
    try:
        with ThreadPoolExecutor(16) as pool:  # 50 creations, spread over both hosts
            ids = list(
                pool.map(lambda i: create_ticket(clients[i % 2], f"u{i % 7}", **RESET)["id"], range(50))
            )

        def process(i: int) -> int:
            return clients[i % 2].post(f"/tickets/{ids[i]}/process/", headers=bearer(f"u{i % 7}")).status_code

        with ThreadPoolExecutor(16) as pool:  # 50 agent runs, each an event on today's tallies
            assert set(pool.map(process, range(50))) == {202}
        wait_until(lambda: processed(clients[0], ids), timeout=120, every=0.5)
        got: dict[str, Any] = wait_until(
            lambda: (f := figures(stack)).get("processed") == 50 and f, timeout=30
        )
    finally:
        for client in clients:
            client.close()
    assert got["tickets"] == 50 and got["processed"] == 50 and got["decisions"] == 50
    assert got["actions:AUTO_RESOLVE"] == got["resolutions"] == got["resolutions:AUTO_RESOLVE"] == 50
    assert got["closed"] == 50
    checked = recompute(stack, "--dry-run")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "50 ticket(s) recounted, 0 difference(s)" in checked.stdout


def test_a_record_lost_after_the_commit_is_repaired_by_redelivery_and_by_recompute(stack: Stack) -> None:
    host = stack.host(**SETTINGS)
    with stack.client(host) as api:
        first = create_ticket(api, "alice", **RESET)  # the host creates its tables on first use
        analytics = stack.storage.table(ANALYTICS)
        analytics.delete_table()  # from here on every record fails; the requests must not
        lost = create_ticket(api, "alice", **RESET)
        message = json.dumps({"ticket_id": lost["id"], "request_id": "lost-1", "requested_by": "alice"})
        stack.storage.queue(AGENT_QUEUE).send_message(message)
        wait_until(lambda: processed(api, [lost["id"]]), timeout=60)
        assert "committed but not recorded" in host.output()
    # The host kept the two failed records to write them later (RetryingAnalytics); it dies
    # before storage is back, and its records with it: what is left to repair them is the
    # redelivery and recompute.
    host.stop()
    host = stack.host(**SETTINGS)
    with stack.client(host) as api:
        analytics.create_table()
        assert figures(stack) == {}

        stack.storage.queue(AGENT_QUEUE).send_message(message)  # a redelivery of the same request
        wait_until(lambda: figures(stack).get("actions:AUTO_RESOLVE") == 1, timeout=60)
        assert figures(stack).get("tickets") is None  # creations are no consumer's: recompute's

        found = recompute(stack, "--dry-run")
        assert found.returncode == 1, found.stdout + found.stderr
        assert f"{datetime.now(UTC).date()}  tickets  stored 0  recomputed 2" in found.stdout, found.stdout
        assert figures(stack).get("tickets") is None  # a dry run repairs nothing

        repaired = recompute(stack)
        assert repaired.returncode == 1 and "repaired: recorded repair-" in repaired.stdout
        clean = recompute(stack)
        assert clean.returncode == 0, clean.stdout
        got = figures(stack)
        assert got["tickets"] == 2 and got["actions:AUTO_RESOLVE"] == 1 and got["processed"] == 1
        assert first["id"] != lost["id"]
