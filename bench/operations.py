"""p50/p99 and throughput of process, the action it queues, feedback and rollback, next to the raw
Azurite operations they are made of, all measured in this run (issue #11, point 4).

In process on `Container.for_azure` (no HTTP, no host: the product's own cost over storage).
Latency: SAMPLES sequential calls after a warm-up call. Throughput: the next calls from THREADS
threads at once, completed calls per second; callers and owners spread over THREADS users (and
admins), so no per-user throttle row is what is measured. Every ticket is a password reset the
agent auto-resolves; feedback is a "no" that reopens (the dearer answer); rollback undoes the
auto-resolution. The raw operations: a small entity insert, an entity-group transaction of a
rollback's shape (one row replaced, one inserted, one replaced), a queue put.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from azure.data.tables import TableClient

from bench.common import RESET, SETTINGS, p50_p99
from shared.config import Settings
from shared.container import Container
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import Principal, ProcessMessage, ProcessRequest, TicketCreate
from shared.domain.rollback import RollbackRequest
from shared.storage.clients import StorageClients, client_options
from shared.storage.names import AGENT_QUEUE

# The raw operations each one needs on its common path (a point read costs about an insert here):
# process: the ticket read, the throttle row's conditional update, the queue put; the action: the
# claim insert, the cap shard update, the due item insert, the transaction; a reopening answer:
# the read, the transaction, the staff notice; a rollback: the read, the rollback log update,
# the transaction, the owner's notice. `floor_p50_ms` sums their raw p50s; `over_floor` is
# the operation's p50 over that sum (what the product adds: serialisation, checks, threads).
FLOOR = {
    "process_request": ("raw_table_insert", "raw_table_insert", "raw_queue_put"),
    "action_execute": ("raw_table_insert", "raw_table_insert", "raw_table_insert", "raw_table_transaction"),
    "feedback": ("raw_table_insert", "raw_table_transaction", "raw_table_insert"),
    "rollback": ("raw_table_insert", "raw_table_insert", "raw_table_transaction", "raw_table_insert"),
}
SAMPLES = 40
BURST = 80
THREADS = 8
T = TypeVar("T")


def latency_and_rate(op: Callable[[T], object], items: Sequence[T]) -> dict[str, Any]:
    """items[0] warms up, the next SAMPLES are timed one by one, the rest run from THREADS threads."""
    op(items[0])
    seconds = []
    for item in items[1 : SAMPLES + 1]:
        start = time.perf_counter()
        op(item)
        seconds.append(time.perf_counter() - start)
    burst = items[SAMPLES + 1 :]
    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(op, burst))
    elapsed = time.perf_counter() - start
    return {
        **p50_p99(seconds),
        "per_s": round(len(burst) / elapsed, 1),
        "sequential_per_s": round(len(seconds) / sum(seconds), 1),
        "samples": len(seconds),
        "burst": len(burst),
    }


def operation_figures(connection_string: str) -> dict[str, Any]:
    settings = Settings(AzureWebJobsStorage=connection_string, **SETTINGS)  # type: ignore[arg-type]
    container = Container.for_azure(settings)
    users = [Principal(sub=f"ops{i}") for i in range(THREADS)]
    admins = [Principal(sub=f"opsadmin{i}", roles=frozenset({"admin"})) for i in range(THREADS)]
    count = 1 + SAMPLES + BURST
    queue = StorageClients(connection_string).queue(AGENT_QUEUE)
    queue.clear_messages()

    def create(i: int) -> tuple[Principal, int]:
        owner = users[i % THREADS]
        return owner, container.ticket_service.create(
            owner, TicketCreate.model_validate(RESET, strict=False)
        ).id

    with ThreadPoolExecutor(THREADS) as pool:
        tickets = list(pool.map(create, range(2 * count)))

    def request(ticket: tuple[Principal, int]) -> object:
        return container.process_service.request(ticket[0], ticket[1], ProcessRequest())

    figures = {"process_request": latency_and_rate(request, tickets)}
    messages: list[ProcessMessage] = []
    while len(messages) < len(tickets):
        batch = list(queue.receive_messages(max_messages=32, visibility_timeout=300))
        if not batch:
            raise RuntimeError(f"only {len(messages)} of {len(tickets)} process messages arrived")
        messages += [ProcessMessage.model_validate_json(m.content) for m in batch]
    queue.clear_messages()
    outcomes: list[str] = []
    figures["action_execute"] = latency_and_rate(
        lambda m: outcomes.append(container.agent_worker.execute(m)), messages
    )
    figures["action_execute"]["outcomes"] = sorted(set(outcomes))

    answer = ResolutionFeedback(resolution_confirmed=False, feedback_text="still broken")
    figures["feedback"] = latency_and_rate(
        lambda t: container.feedback_service.answer(t[0], t[1], answer), tickets[:count]
    )
    rolled = list(enumerate(t for _, t in tickets[count:]))
    figures["rollback"] = latency_and_rate(
        lambda it: container.rollback_service.rollback(
            admins[it[0] % THREADS], f"{it[1]}-2", RollbackRequest()
        ),
        rolled,
    )
    figures.update(raw_figures(connection_string))
    for name, parts in FLOOR.items():
        floor = sum(figures[part]["p50"] for part in parts)
        figures[name]["floor_p50_ms"] = round(floor, 2)
        figures[name]["over_floor"] = round(figures[name]["p50"] / floor, 2)
    return figures


def raw_figures(connection_string: str) -> dict[str, Any]:
    table = TableClient.from_connection_string(connection_string, "benchrawops", **client_options())
    table.create_table()
    queue = StorageClients(connection_string).queue("bench-raw-ops")
    queue.create_queue()
    count = 1 + SAMPLES + BURST
    try:

        def insert(i: int) -> object:
            return table.create_entity({"PartitionKey": "raw", "RowKey": f"{i:06d}", "Value": i, "Text": "d"})

        def transaction(i: int) -> object:
            rows = [{"PartitionKey": f"t{i}", "RowKey": r, "Value": i, "Text": "d" * 500} for r in "abc"]
            table.submit_transaction([("create", rows[0]), ("create", rows[2])])  # untimed set-up
            return rows

        prepared = [transaction(i) for i in range(count)]

        def rollback_shaped(rows: list[dict[str, Any]]) -> object:
            return table.submit_transaction([("upsert", rows[0]), ("create", rows[1]), ("upsert", rows[2])])

        return {
            "raw_table_insert": latency_and_rate(insert, range(count)),
            "raw_table_transaction": latency_and_rate(rollback_shaped, prepared),
            "raw_queue_put": latency_and_rate(lambda i: queue.send_message(f"message-{i}"), range(count)),
        }
    finally:
        table.delete_table()
        queue.delete_queue()
