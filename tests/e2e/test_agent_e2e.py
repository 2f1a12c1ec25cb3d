"""The autonomous agent end to end: HTTP → queue → worker → Table Storage, on real hosts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from shared.domain.rollout import in_rollout
from shared.storage.names import AGENT_QUEUE, DUE, FOLLOWUP_QUEUE
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until

STAFF, ADMIN = bearer("sam", "staff"), bearer("ada", "admin")
AUTONOMOUS = {"AUTO_RESOLVE", "ESCALATE", "ASSIGN_TO_TEAM", "REQUEST_CLARIFICATION", "SCHEDULE_FOLLOWUP"}
RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}


def history(api: httpx.Client, ticket_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/tickets/{ticket_id}/action-history/", headers=STAFF, params={"limit": 100})
    assert response.status_code == 200
    return response.json()["action_history"]


def processed(api: httpx.Client, ids: list[int]) -> bool:
    return all(api.get(f"/tickets/{i}/", headers=STAFF).json()["agent_processed"] for i in ids)


def process(api: httpx.Client, ticket_id: int, user: str = "alice") -> httpx.Response:
    return api.post(f"/tickets/{ticket_id}/process/", headers=bearer(user))


def test_the_agent_resolves_clarifies_and_escalates(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        reset = create_ticket(api, "alice", **RESET)
        vague = create_ticket(
            api, "alice", issue_type="Problem", description="it doesn't work", category="other"
        )
        ransom = create_ticket(
            api,
            "alice",
            issue_type="Files encrypted",
            description="Ransomware encrypted my files and there is a ransom note on the screen.",
            category="security",
        )
        for ticket in (reset, vague, ransom):
            accepted = process(api, ticket["id"])
            assert accepted.status_code == 202 and accepted.json()["status"] == "queued"
            assert int(accepted.headers["RateLimit-Limit"]) == 50
        wait_until(lambda: processed(api, [reset["id"], vague["id"], ransom["id"]]), timeout=20)
        [resolved] = history(api, reset["id"])
        assert resolved["action_type"] == "AUTO_RESOLVE" and resolved["confidence_score"] >= 0.8
        assert resolved["agent_reasoning"] and resolved["executed_by"] == "autonomous_agent"
        assert resolved["action_params"]["knowledge_base_entries"]
        ticket = api.get(f"/tickets/{reset['id']}/", headers=bearer("alice")).json()
        assert ticket["status"] == "resolved" and ticket["resolution"]["outcome"] == "pending"
        assert [e["action_type"] for e in history(api, vague["id"])] == ["REQUEST_CLARIFICATION"]
        assert [e["action_type"] for e in history(api, ransom["id"])] == ["ESCALATE"]
        assert api.get(f"/tickets/{ransom['id']}/", headers=STAFF).json()["priority"] in ("high", "critical")
        followups = stack.storage.queue(FOLLOWUP_QUEUE).get_queue_properties().approximate_message_count
        assert followups == 0  # due in a day: an item of the due index, not a delayed message
        due = [e["RowKey"] for e in stack.storage.table(DUE).list_entities()]
        assert f"followup-{reset['id']}-2" in due
        assert process(api, reset["id"]).json()["status"] == "skipped"


def test_one_users_60_concurrent_requests_admit_exactly_50(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(lambda _: create_ticket(api, "alice", issue_type="x")["id"], range(60)))
        with ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(lambda i: process(api, i), ids))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 50 + [429] * 10
    refused = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert all(r.headers["content-type"].startswith("application/json") for r in refused)  # no Accept


def test_200_requests_over_two_hosts_admit_exactly_50(stack: Stack) -> None:
    hosts = [stack.host(), stack.host()]
    clients = [stack.client(h) for h in hosts]
    with ThreadPoolExecutor(16) as pool:
        ids = list(
            pool.map(lambda i: create_ticket(clients[i % 2], "alice", issue_type="x")["id"], range(200))
        )
    with ThreadPoolExecutor(40) as pool:
        responses = list(pool.map(lambda n: process(clients[n % 2], ids[n]), range(200)))
    assert sum(r.status_code == 202 for r in responses) == 50
    assert sum(r.status_code == 429 for r in responses) == 150


def test_hourly_cap_is_exact_across_two_hosts(stack: Stack) -> None:
    hosts = [stack.host(MAX_AUTONOMOUS_ACTIONS_PER_HOUR=10), stack.host(MAX_AUTONOMOUS_ACTIONS_PER_HOUR=10)]
    clients = [stack.client(h) for h in hosts]
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda i: create_ticket(clients[i % 2], f"u{i}", **RESET)["id"], range(40)))
    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(lambda n: process(clients[n % 2], ids[n], f"u{n}").status_code, range(40)))
    assert codes == [202] * 40
    wait_until(lambda: processed(clients[0], ids), timeout=60)
    entries = [e for i in ids for e in history(clients[0], i)]
    assert len(entries) == 40  # none lost, none doubled
    assert sum(e["action_type"] in AUTONOMOUS for e in entries) == 10
    deferred = [e for e in entries if e["action_type"] == "DEFER_TO_HUMAN"]
    assert len(deferred) == 30 and {e["action_params"]["reason"] for e in deferred} == {"hourly_cap_reached"}


def test_a_message_delivered_three_times_acts_once(stack: Stack) -> None:
    host = stack.host(AGENT_CLAIM_SECONDS=3)  # copies that meet the live claim look again within 4 s
    with stack.client(host) as api:
        ticket = create_ticket(api, "alice", **RESET)
        message = json.dumps({"ticket_id": ticket["id"], "request_id": "feedc0de", "requested_by": "alice"})
        for _ in range(3):
            stack.storage.queue(AGENT_QUEUE).send_message(message)
        wait_until(lambda: processed(api, [ticket["id"]]))
        queue = stack.storage.queue(AGENT_QUEUE)
        wait_until(lambda: queue.get_queue_properties().approximate_message_count == 0)
        assert [e["action_type"] for e in history(api, ticket["id"])] == ["AUTO_RESOLVE"]


def done_count(stack: Stack) -> int:
    """Tickets the agent has processed, read straight from storage (no host needed)."""
    rows = stack.storage.table("tickets").query_entities("RowKey eq 'ticket'", select=["Data"])
    return sum(json.loads(r["Data"])["agent_processed"] for r in rows)


def test_a_worker_killed_mid_batch_leaves_every_ticket_with_exactly_one_action(stack: Stack) -> None:
    settings = {
        "DEVHOST_QUEUE_LEASE_SECONDS": 4,
        "AGENT_CLAIM_SECONDS": 2,
        "AGENT_ACTIONS_THROTTLE_RATE": "1000/minute",
    }
    first = stack.host(**settings)
    with stack.client(first) as api:
        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(lambda i: create_ticket(api, f"u{i % 10}", **RESET)["id"], range(200)))
        queue = stack.storage.queue(AGENT_QUEUE)
        for i, tid in enumerate(ids):  # straight onto the queue, so the kill lands mid-batch
            queue.send_message(json.dumps({"ticket_id": tid, "request_id": f"kill{i}", "requested_by": "u"}))

        wait_until(lambda: done_count(stack) >= 5, timeout=60, every=0.05)
    first.kill()
    assert done_count(stack) < 200, "the kill must land mid-batch"
    second = stack.host(**settings)
    with stack.client(second) as api:
        wait_until(lambda: processed(api, ids), timeout=120, every=1)
        counts = {tid: len(history(api, tid)) for tid in ids}
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}


def test_controls_stop_gate_and_shadow_the_agent_on_every_instance(stack: Stack) -> None:
    hosts = [stack.host(), stack.host()]
    clients = [stack.client(h) for h in hosts]
    api = clients[0]
    warm = create_ticket(api, "alice", **RESET)["id"]
    process(api, warm)
    wait_until(lambda: processed(api, [warm]))

    def run_batch(n: int) -> list[int]:
        ids = [create_ticket(clients[i % 2], "alice", **RESET)["id"] for i in range(n)]
        for i, tid in enumerate(ids):
            assert process(clients[i % 2], tid).status_code == 202
        wait_until(lambda: all(history(api, i) for i in ids), timeout=60)
        return ids

    def change(**fields: Any) -> None:
        response = clients[1].put("/agent/controls/", json={**fields, "reason": "e2e"}, headers=ADMIN)
        assert response.status_code == 200, response.text
        time.sleep(6)  # the contract: every instance within 10 s; the cache holds 5 s

    change(enabled=False)
    assert api.get("/agent/controls/", headers=ADMIN).json()["enabled"] is False
    for tid in run_batch(6):
        [entry] = history(api, tid)
        assert (
            entry["action_type"] == "DEFER_TO_HUMAN" and entry["action_params"]["reason"] == "agent_disabled"
        )
    change(enabled=True, rollout_percent=10)
    for tid in run_batch(20):
        [entry] = history(api, tid)
        assert (entry["action_type"] in AUTONOMOUS) == in_rollout(tid, 10), (tid, entry["action_type"])
    change(rollout_percent=100, mode="shadow")
    for tid in run_batch(4):
        ticket = api.get(f"/tickets/{tid}/", headers=STAFF).json()
        [entry] = history(api, tid)
        assert entry["action_type"] == "SHADOW_DECISION" and ticket["status"] == "new"
        assert ticket["agent_processed"] is False and entry["action_params"]["would_do"]
    for client in clients:
        client.close()


def test_a_poison_message_shows_in_health_and_replays(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        api.get("/health/")  # the app creates its queues on its first invocation, as on a fresh account
        stack.storage.queue(AGENT_QUEUE).send_message("{not json")
        poison = stack.storage.queue(f"{AGENT_QUEUE}-poison")
        wait_until(lambda: poison.get_queue_properties().approximate_message_count == 1, timeout=30)
        health = api.get("/health/", headers=STAFF)
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert health.json()["poison"]["agent-actions-poison"] == 1
        env = stack.env()
        listed = subprocess.run(
            [sys.executable, "-m", "manage", "poison", "list"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "{not json" in listed.stdout and "1 poison message(s)" in listed.stdout
        replayed = subprocess.run(
            [sys.executable, "-m", "manage", "poison", "replay", "--queue", AGENT_QUEUE],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "replayed 1 message(s)" in replayed.stdout
        # it runs again (and, still malformed, fails its three tries again)
        wait_until(
            lambda: poison.get_queue_properties().approximate_message_count == 0, timeout=5, every=0.05
        )
        wait_until(lambda: poison.get_queue_properties().approximate_message_count == 1, timeout=30)
        assert host.output().count("malformed message") >= 6


def test_with_the_agent_service_down_tickets_go_to_humans_without_error_text(stack: Stack) -> None:
    from devhost.azurite import free_port

    host = stack.host(
        AGENT_API_URL=f"http://127.0.0.1:{free_port()}/analyse",
        AGENT_API_TIMEOUT_SECONDS=1,
        AGENT_RETRY_SECONDS=0,
    )
    with stack.client(host) as api:
        ticket = create_ticket(api, "alice", **RESET)
        assert process(api, ticket["id"]).status_code == 202
        wait_until(lambda: processed(api, [ticket["id"]]), timeout=30)
        [entry] = history(api, ticket["id"])
        assert (
            entry["action_type"] == "DEFER_TO_HUMAN"
            and entry["action_params"]["reason"] == "agent_unavailable"
        )
        seen = api.get(f"/tickets/{ticket['id']}/", headers=bearer("alice")).json()
        assert seen["status"] == "open" and "connection" not in json.dumps(seen).lower()


def test_a_scheduled_followup_that_finds_the_ticket_unresolved_escalates_it(stack: Stack) -> None:
    host = stack.host(FOLLOWUP_DELAY_SECONDS=1)
    with stack.client(host) as api:
        ticket = create_ticket(
            api, "alice", issue_type="VPN", description="cannot connect to vpn", category="vpn"
        )
        assert process(api, ticket["id"]).status_code == 202
        wait_until(lambda: len(history(api, ticket["id"])) == 2, timeout=30)
        check, scheduled = history(api, ticket["id"])
        assert (
            scheduled["action_type"] == "SCHEDULE_FOLLOWUP"
            and scheduled["after_state"]["status"] == "in_progress"
        )
        assert check["action_type"] == "ESCALATE" and check["executed_by"] == "system"
        assert api.get(f"/tickets/{ticket['id']}/", headers=STAFF).json()["status"] == "escalated"
