"""Every table and queue the app uses, created idempotently (local host, `manage check`, tests)."""

from __future__ import annotations

from azure.core.exceptions import ResourceExistsError

from shared.storage.clients import StorageClients

TICKETS = "tickets"
TICKET_OWNERS = "ticketowners"
COUNTERS = "counters"
RATE_LIMITS = "ratelimits"
CONTROLS = "controls"
AGGREGATES = "aggregates"
NOTIFICATIONS = "notifications"
TABLES = (TICKETS, TICKET_OWNERS, COUNTERS, RATE_LIMITS, CONTROLS, AGGREGATES, NOTIFICATIONS)

AGENT_QUEUE = "agent-actions"
FOLLOWUP_QUEUE = "followups"
CHECK_QUEUE = "agent-checks"
QUEUES = (AGENT_QUEUE, FOLLOWUP_QUEUE, CHECK_QUEUE)


def poison(queue: str) -> str:
    return f"{queue}-poison"


def provision(connection_string: str) -> None:
    clients = StorageClients(connection_string)
    for table in TABLES:
        clients.table_service.create_table_if_not_exists(table)
    for queue in QUEUES + tuple(poison(q) for q in QUEUES):
        try:
            clients.queue(queue).create_queue()
        except ResourceExistsError:
            pass
