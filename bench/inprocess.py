"""Figures measured in this process against Azurite: storage round trips and raw SDK baselines."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from bench.common import RANSOMWARE, RESET, SETTINGS, median
from shared.config import Settings
from shared.container import Container
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import FollowupMessage, Principal, ProcessMessage, ProcessRequest, TicketCreate
from shared.domain.rollback import RollbackRequest
from shared.services.agent import Queues
from shared.services.sweep import Sweeper, SweepTimings
from shared.storage.clients import StorageClients, round_trips
from shared.storage.lean import LeanTableClient
from shared.storage.names import AGENT_QUEUE, CHECK_QUEUE, FOLLOWUP_QUEUE, QUEUES

SAMPLES = 20
ALICE = Principal(sub="alice")
ADA = Principal(sub="ada", roles=frozenset({"admin"}))


def counted(op: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    """Round trips of one call, and its result."""
    before = round_trips()
    result = op(*args)
    return round_trips() - before, result


def summary(counts: list[int], **extra: Any) -> dict[str, Any]:
    return {"median": median(counts), "max": max(counts), "samples": len(counts), **extra}


def measure_round_trips(connection_string: str) -> tuple[dict[str, dict[str, Any]], list[float]]:
    """Round trips of one steady-state operation each, after a warm-up (id block, ETags, controls).

    Also the seconds of 100 in-process creates (service call, no HTTP), to split the host's share
    of the HTTP create latency from the storage's."""
    settings = Settings(AzureWebJobsStorage=connection_string, **SETTINGS)  # type: ignore[arg-type]
    container = Container.for_azure(settings)
    tickets, process, worker = container.ticket_service, container.process_service, container.agent_worker

    def create(fields: dict[str, Any]) -> int:
        return tickets.create(ALICE, TicketCreate.model_validate(fields, strict=False)).id

    agent_queue = StorageClients(connection_string).queue(AGENT_QUEUE)

    def execute(ticket_id: int) -> tuple[int, str]:
        """Round trips of the worker on the message the endpoint queued (receive/delete excluded)."""
        agent_queue.clear_messages()
        process.request(ALICE, ticket_id, ProcessRequest())
        [received] = agent_queue.receive_messages(max_messages=1)
        count, outcome = counted(worker.execute, ProcessMessage.model_validate_json(received.content))
        agent_queue.delete_message(received)
        return count, outcome

    create({"issue_type": "Bench", "description": "warm-up"})  # claims the id block
    creates = [counted(create, {"issue_type": "Bench", "description": "d"}) for _ in range(SAMPLES)]
    ids = [ticket_id for _, ticket_id in creates]
    gets = [counted(tickets.get, ALICE, i)[0] for i in ids]
    process.request(ALICE, ids[0], ProcessRequest())  # the throttle row exists and its ETag is known
    requests = [counted(process.request, ALICE, i, ProcessRequest())[0] for i in ids[1:]]

    figures = {
        "ticket_create": summary([n for n, _ in creates]),
        "ticket_get": summary(gets),
        "process_request": summary(requests),
    }
    resolved: list[int] = []
    for name, fields in (("auto_resolve", RESET), ("escalate", RANSOMWARE)):
        targets = [create(fields) for _ in range(SAMPLES + 1)]
        execute(targets[0])  # controls cached, cap shard ETags known
        runs = [execute(t) for t in targets[1:]]
        outcomes = sorted({outcome for _, outcome in runs})
        figures[f"action_execute_{name}"] = summary([n for n, _ in runs], outcomes=outcomes)
        resolved = resolved or targets
    figures.update(sweep_round_trips(container, len(resolved)))
    figures.update(followup_round_trips(container, resolved))
    figures.update(measure_feedback(container, create, execute))
    to_roll_back = [create(RESET) for _ in range(SAMPLES)]
    for ticket_id in to_roll_back:
        execute(ticket_id)
    figures["rollback"] = measure_rollbacks(container, to_roll_back)
    figures.update(measure_feedback_link(container, create, execute))
    figures.update(analytics_round_trips(container))
    seconds = []
    for _ in range(100):
        start = time.perf_counter()
        create({"issue_type": "Bench", "description": "d"})
        seconds.append(time.perf_counter() - start)
    clients = StorageClients(connection_string)
    for queue in QUEUES:  # nothing left for the host to pick up later
        clients.queue(queue).clear_messages()
    return figures, seconds


def measure_rollbacks(container: Container, resolved: list[int]) -> dict[str, Any]:
    """Round trips of `RollbackService.rollback` (no HTTP) on auto-resolved tickets, the first a
    warm-up (rollback log row and its ETag known); `seconds` has each call's time."""
    rollback = container.rollback_service.rollback
    rollback(ADA, f"{resolved[0]}-2", RollbackRequest())
    counts, seconds = [], []
    for ticket_id in resolved[1:]:
        start = time.perf_counter()
        count, _ = counted(rollback, ADA, f"{ticket_id}-2", RollbackRequest())
        seconds.append(time.perf_counter() - start)
        counts.append(count)
    return summary(counts, seconds=seconds)


def analytics_round_trips(container: Container) -> dict[str, dict[str, Any]]:
    """The analytics journal: what the operations above recorded (one insert each, in their
    counts), folded into the year's sums by a sweep-sized fold (run as if an hour later, when the
    tombstones expire too), and a read of those days before and after. The fold costs a discovery
    query, then per partition 7 round trips a batch of up to 98 rows."""
    from shared.domain.analytics import TOMBSTONE_SECONDS
    from shared.storage.tables.analytics import TableAnalytics

    store = container.analytics
    assert isinstance(store, TableAnalytics)
    today = datetime.now(UTC).date()
    days = (today - timedelta(days=1), today + timedelta(days=1))
    before, _ = counted(store.read, *days)
    later = datetime.now(UTC) + timedelta(seconds=TOMBSTONE_SECONDS + 60)
    folder = TableAnalytics(store._table, lambda: later)
    partitions = {
        e["PartitionKey"] for e in store._table.query_entities("RecordedUs ge 0L", select=["PartitionKey"])
    }
    fold, folded = counted(folder.fold, SweepTimings().fold)
    after, _ = counted(store.read, *days)
    return {
        "analytics_fold": {"round_trips": fold, "folded": folded, "partitions": len(partitions)},
        "analytics_read_3_days": {"round_trips_before_fold": before, "round_trips_after_fold": after},
    }


def raw_rollback_sized_transactions(
    connection_string: str,
    count: int = 100,
    warmup: int = 10,
) -> list[float]:
    """Seconds per bare entity-group transaction of a rollback's shape (one row replaced, one
    inserted, one replaced) in a partition of its own, for comparison with the rollback."""
    table = TableClient.from_connection_string(connection_string, "benchrawtx")
    table.create_table()
    try:
        seconds = []
        for i in range(warmup + count):
            rows = [{"PartitionKey": f"p{i}", "RowKey": row, "Value": i, "Text": "d" * 500} for row in "abc"]
            table.submit_transaction([("create", rows[0]), ("create", rows[2])])
            ops = [("upsert", rows[0]), ("create", rows[1]), ("upsert", rows[2])]
            start = time.perf_counter()
            table.submit_transaction(ops)
            seconds.append(time.perf_counter() - start)
        return seconds[warmup:]
    finally:
        table.delete_table()


def sweep_round_trips(container: Container, resolved: int) -> dict[str, dict[str, Any]]:
    """One sweeper run now (nothing due: the follow-ups are a day away; the first run, which
    writes the cursor, excluded), and one a day later, when the auto-resolutions' follow-ups are
    due (cursor, query, a send and a mark per item, cursor)."""
    sweeper = container.sweeper
    sweeper.run()
    idle = [counted(sweeper.run)[0] for _ in range(SAMPLES)]
    later = datetime.now(UTC) + timedelta(seconds=container.settings.followup_delay_seconds + 120)
    queues = Queues(agent=AGENT_QUEUE, followups=FOLLOWUP_QUEUE, checks=CHECK_QUEUE)
    due = Sweeper(container.due, container.tickets, container.queue, lambda: later, queues, SweepTimings())
    count, report = counted(due.run)
    return {
        "sweep_run": summary(idle),
        "sweep_run_due": {"round_trips": count, "sent": report.sent, "resolved_tickets": resolved},
    }


def followup_round_trips(container: Container, resolved: list[int]) -> dict[str, dict[str, Any]]:
    """The follow-up consumer on auto-resolved tickets (version 2), as its queued message is
    delivered (no webhook): the first delivery, and a redelivery of it."""
    follow_up = container.followup_service.run
    messages = [FollowupMessage(ticket_id=t, action_seq=2) for t in resolved]
    first = [counted(follow_up, m) for m in messages]
    again = [counted(follow_up, m) for m in messages]
    return {
        "followup_consumer": summary([n for n, _ in first], outcomes=sorted({o for _, o in first})),
        "followup_consumer_duplicate": summary([n for n, _ in again], outcomes=sorted({o for _, o in again})),
    }


def measure_feedback(
    container: Container, create: Callable[[dict[str, Any]], int], execute: Callable[[int], Any]
) -> dict[str, dict[str, Any]]:
    """Round trips of one answer on an auto-resolved ticket: a "yes" (read, transaction) and a
    "no" that reopens it (read, one transaction of two entries, the staff notice)."""
    feedback = container.feedback_service
    answers = {
        "feedback_confirm": ResolutionFeedback(resolution_confirmed=True, satisfaction_score=5),
        "feedback_reopen": ResolutionFeedback(resolution_confirmed=False, feedback_text="still broken"),
    }
    figures = {}
    for name, answer in answers.items():
        resolved = [create(RESET) for _ in range(SAMPLES)]
        for ticket_id in resolved:
            execute(ticket_id)
        runs = [counted(feedback.answer, ALICE, ticket_id, answer) for ticket_id in resolved]
        figures[name] = summary([n for n, _ in runs], reopened=sorted({r.ticket_reopened for _, r in runs}))
    return figures


def measure_feedback_link(
    container: Container, create: Callable[[dict[str, Any]], int], execute: Callable[[int], Any]
) -> dict[str, dict[str, Any]]:
    """Round trips of a "no" through a one-click link on an auto-resolved ticket: the ticket read
    with the link's record, the history since the resolution, one transaction, the staff notice."""
    from shared.container import link_settings
    from shared.services.links import answer_links

    tokens = []
    for _ in range(SAMPLES):
        ticket_id = create(RESET)
        execute(ticket_id)
        ticket = container.tickets.get(ticket_id)
        assert ticket is not None
        url = answer_links(link_settings(container.settings), ticket, 2, container.clock())["no"]
        tokens.append(url.rsplit("/", 2)[-2])
    runs = [counted(container.link_service.answer, token, None, "still broken") for token in tokens]
    return {
        "feedback_link": summary([n for n, _ in runs], reopened=sorted({r.ticket_reopened for _, r in runs}))
    }


def raw_table_writes(connection_string: str, count: int = 300, warmup: int = 20) -> dict[str, list[float]]:
    """Seconds per sequential create_entity of a small entity; per two-entity transaction (100),
    by the SDK's TableClient and by the app's (LeanTableClient, shared/storage/lean.py)."""
    table = TableClient.from_connection_string(connection_string, "benchraw")
    table.create_table()
    app = LeanTableClient.from_connection_string(connection_string, "benchraw")
    try:
        inserts, transactions, app_transactions = [], [], []
        for i in range(warmup + count):
            entity = {"PartitionKey": "bench", "RowKey": f"{i:06d}", "Value": i, "Text": "d"}
            start = time.perf_counter()
            table.create_entity(entity)
            inserts.append(time.perf_counter() - start)
        for i in range(warmup + 100):
            pair = [("create", {"PartitionKey": f"t{i}", "RowKey": row, "Value": i}) for row in "ab"]
            start = time.perf_counter()
            table.submit_transaction(pair)
            transactions.append(time.perf_counter() - start)
            pair = [("create", {"PartitionKey": f"a{i}", "RowKey": row, "Value": i}) for row in "ab"]
            start = time.perf_counter()
            app.submit_transaction(pair)
            app_transactions.append(time.perf_counter() - start)
        return {
            "insert": inserts[warmup:],
            "transaction": transactions[warmup:],
            "app_transaction": app_transactions[warmup:],
        }
    finally:
        table.delete_table()


def raw_queue_roundtrip(connection_string: str, count: int = 500) -> dict[str, Any]:
    """Send all, then receive+delete one at a time; messages per second over the whole."""
    queue = QueueClient.from_connection_string(connection_string, "bench-raw")
    queue.create_queue()
    try:
        for i in range(10):  # warm the connection pool
            queue.send_message(f"warm-{i}")
        queue.clear_messages()
        start = time.perf_counter()
        for i in range(count):
            queue.send_message(f"message-{i}")
        sent = time.perf_counter()
        received = 0
        while received < count:
            message = queue.receive_message()
            if message is None:
                raise RuntimeError(f"queue ran dry after {received} of {count} messages")
            queue.delete_message(message)
            received += 1
        end = time.perf_counter()
        return {
            "per_s": round(count / (end - start), 1),
            "send_ms_per_message": round((sent - start) * 1000 / count, 2),
            "receive_delete_ms_per_message": round((end - sent) * 1000 / count, 2),
        }
    finally:
        queue.delete_queue()
