"""Figures measured through the local Functions host: create latency and the pipeline drain."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from azure.storage.queue import QueueClient

from bench.common import PRINTER, RANSOMWARE, RESET, SECRET, VAGUE
from shared.auth import mint_token
from shared.storage.names import AGENT_QUEUE, poison

THREADS = 16
POLL_SECONDS = 0.1
USERS = [f"user{i:02d}" for i in range(50)]
TOKENS = {user: mint_token(user, [], SECRET) for user in [*USERS, "alice"]}
STAFF_TOKEN = mint_token("sam", ["staff"], SECRET)
# Mostly auto-resolvable password resets, plus an escalation, a clarification and a printer fix.
MIX = [RESET] * 7 + [RANSOMWARE, VAGUE, PRINTER]


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def create_latency(url: str, count: int = 300, warmup: int = 20) -> list[float]:
    """Sequential POST /api/tickets/ on one persistent client; seconds per request after warm-up."""
    body, headers = {"issue_type": "Bench", "description": "d"}, auth("alice")
    seconds = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(warmup + count):
            start = time.perf_counter()
            response = client.post("/tickets/", json=body, headers=headers)
            seconds.append(time.perf_counter() - start)
            if response.status_code != 201:
                raise RuntimeError(f"create failed: {response.status_code} {response.text}")
    return seconds[warmup:]


def _processed(client: httpx.Client, ids: set[int]) -> int:
    """How many of `ids` the staff listing shows with agent_processed (cursor paging)."""
    done, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = client.get("/tickets/", params=params, headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
        response.raise_for_status()
        page = response.json()
        done += sum(1 for t in page["results"] if t["id"] in ids and t["agent_processed"])
        cursor = page.get("next_cursor")
        if not cursor:
            return done


def pipeline_drain(url: str, connection_string: str, count: int = 500) -> dict[str, Any]:
    """Create `count` tickets, request processing for all from THREADS threads, time until drained.

    From the first process request until the agent queue is empty and every ticket shows
    agent_processed (the queue depth is polled every POLL_SECONDS; the listing confirms)."""
    queue = QueueClient.from_connection_string(connection_string, AGENT_QUEUE)
    poisoned = QueueClient.from_connection_string(connection_string, poison(AGENT_QUEUE))
    limits = httpx.Limits(max_connections=THREADS, max_keepalive_connections=THREADS)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as client, ThreadPoolExecutor(THREADS) as pool:
        owners = list(itertools.islice(itertools.cycle(USERS), count))
        fields = list(itertools.islice(itertools.cycle(MIX), count))

        def create(user: str, body: dict[str, Any]) -> tuple[str, int]:
            response = client.post("/tickets/", json=body, headers=auth(user))
            response.raise_for_status()
            return user, int(response.json()["id"])

        def request(user: str, ticket_id: int) -> int:
            return client.post(f"/tickets/{ticket_id}/process/", headers=auth(user)).status_code

        tickets = list(pool.map(create, owners, fields))
        start = time.perf_counter()
        statuses = list(pool.map(lambda t: request(*t), tickets))
        requested = time.perf_counter()
        if any(status != 202 for status in statuses):
            raise RuntimeError(f"process requests not all queued: {sorted(set(statuses))}")
        ids, early = {ticket_id for _, ticket_id in tickets}, 0
        while True:
            if queue.get_queue_properties().approximate_message_count == 0:
                drained = time.perf_counter()
                if _processed(client, ids) == count:
                    break
                early += 1  # the queue looked empty before every ticket was processed
            time.sleep(POLL_SECONDS)
            if time.perf_counter() - start > 600:
                raise RuntimeError("the pipeline did not drain in 10 minutes")
        poison_count = poisoned.get_queue_properties().approximate_message_count
    seconds = drained - start
    return {
        "per_s": round(count / seconds, 1),
        "tickets": count,
        "seconds": round(seconds, 2),
        "requests_seconds": round(requested - start, 2),
        "poisoned": poison_count,
        "empty_queue_before_done": early,
    }
