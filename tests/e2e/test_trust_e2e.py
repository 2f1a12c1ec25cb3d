"""The agent's trust guarantees end to end, tried as a hostile user or an unlucky operator would."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from shared.domain.models import RequestRecord
from shared.storage.keys import request_row, ticket_key
from shared.storage.names import AGENT_QUEUE
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.e2e.test_agent_e2e import RESET, STAFF, history, process, processed
from tests.helpers import QuietHandler, local_server, serving, url_of

AUTONOMOUS = {"AUTO_RESOLVE", "ESCALATE", "ASSIGN_TO_TEAM", "REQUEST_CLARIFICATION", "SCHEDULE_FOLLOWUP"}


def poison_count(stack: Stack) -> int:
    queue = stack.storage.queue(f"{AGENT_QUEUE}-poison")
    try:
        return int(queue.get_queue_properties().approximate_message_count)
    except Exception:  # not created: nothing was ever poisoned
        return 0


def test_one_users_ten_calls_on_one_ticket_use_one_slot_of_the_cap(stack: Stack) -> None:
    host = stack.host(MAX_AUTONOMOUS_ACTIONS_PER_HOUR=4)
    with stack.client(host) as api:
        target = create_ticket(api, "mallory", **RESET)["id"]
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: process(api, target, "mallory").status_code, range(10)))
        assert set(codes) <= {200, 202} and 202 in codes
        wait_until(lambda: processed(api, [target]))
        time.sleep(2)  # every copy has settled (they lose the race, give their slot back)
        others = [create_ticket(api, f"user{i}", **RESET)["id"] for i in range(3)]
        for i, tid in enumerate(others):
            assert process(api, tid, f"user{i}").status_code == 202
        wait_until(lambda: processed(api, others))
        fifth = create_ticket(api, "user4", **RESET)["id"]
        assert process(api, fifth, "user4").status_code == 202
        wait_until(lambda: processed(api, [fifth]))
        actions = [e["action_type"] for t in [target, *others] for e in history(api, t)]
        assert actions == ["AUTO_RESOLVE"] * 4
        [deferred] = history(api, fifth)
        assert deferred["action_type"] == "DEFER_TO_HUMAN"
        assert deferred["action_params"]["reason"] == "hourly_cap_reached"
        assert poison_count(stack) == 0


def test_the_agent_never_overrides_people(stack: Stack) -> None:
    """Staff hold a ticket: the owner cannot send the agent at it; a change made while the agent
    thinks is not overwritten."""
    answered = threading.Event()
    release = threading.Event()

    class SlowAgent(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            answered.set()
            release.wait(10)  # the analysis takes until the person has acted
            body = json.dumps(
                {
                    "confidence": 0.95,
                    "recommended_action": "auto_resolve",
                    "reasoning": "Password reset.",
                    "analysis": {"severity": "low", "category": "account"},
                    "solution": {"steps": ["Reset it"], "success_probability": 0.95},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(local_server(SlowAgent)) as server:
        try:
            url = url_of(server, "/analyse")
            host = stack.host(AGENT_API_URL=url, AGENT_API_TIMEOUT_SECONDS=20)
            with stack.client(host) as api:
                held = create_ticket(api, "alice", **RESET)["id"]
                escalate = {"status": "escalated", "reason": "VIP, handling it myself"}
                assert api.post(f"/tickets/{held}/status/", json=escalate, headers=STAFF).status_code == 200
                refused = process(api, held)
                assert refused.status_code == 409 and refused.json()["code"] == "status_locked"
                assert api.get(f"/tickets/{held}/", headers=STAFF).json()["status"] == "escalated"

                racing = create_ticket(api, "alice", **RESET)["id"]
                assert process(api, racing).status_code == 202
                assert answered.wait(20), "the agent service was never called"
                taken = {"status": "in_progress", "reason": "on it", "assigned_team": "identity"}
                assert api.post(f"/tickets/{racing}/status/", json=taken, headers=STAFF).status_code == 200
                release.set()
                time.sleep(3)  # the worker gets its answer, tries to commit, and must not
                ticket = api.get(f"/tickets/{racing}/", headers=STAFF).json()
                assert ticket["status"] == "in_progress" and ticket["assigned_team"] == "identity"
                assert [e["action_type"] for e in history(api, racing)] == ["STATUS_CHANGE"]
                assert poison_count(stack) == 0
        finally:
            release.set()


def test_a_claim_left_behind_delays_the_message_instead_of_poisoning_it(stack: Stack) -> None:
    host = stack.host()  # maxDequeueCount 3, 1 s visibility: retries alone would poison it in ~3 s
    with stack.client(host) as api:
        ticket = create_ticket(api, "alice", **RESET)["id"]
        leftover = RequestRecord(
            request_id="leftover1", status="INPROGRESS", expires_at=datetime.now(UTC) + timedelta(seconds=8)
        )
        stack.storage.table("tickets").create_entity(
            {
                "PartitionKey": ticket_key(ticket),
                "RowKey": request_row("leftover1"),
                "Data": leftover.model_dump_json(),
            }
        )
        message = {"ticket_id": ticket, "request_id": "leftover1", "requested_by": "alice"}
        stack.storage.queue(AGENT_QUEUE).send_message(json.dumps(message))
        time.sleep(5)
        assert not processed(api, [ticket]) and poison_count(stack) == 0  # waiting for the claim
        wait_until(lambda: processed(api, [ticket]), timeout=30)
        assert [e["action_type"] for e in history(api, ticket)] == ["AUTO_RESOLVE"]
        assert poison_count(stack) == 0


def test_a_ticket_of_control_characters_is_stored_or_refused_and_then_decided(stack: Stack) -> None:
    host = stack.host()
    with stack.client(host) as api:
        body = {"issue_type": "Weird", "description": "\u0001" * 10_000, "category": "other"}
        created = api.post("/tickets/", json=body, headers=bearer("alice"))
        assert created.status_code in (201, 400), created.text
        if created.status_code == 400:
            assert created.json()["errors"][0]["loc"] == "description"
            return
        tid = created.json()["id"]
        assert process(api, tid).status_code == 202
        wait_until(lambda: processed(api, [tid]), timeout=30)
        assert len(history(api, tid)) == 1 and poison_count(stack) == 0
