"""The name of every table and queue the app uses (provisioned by shared/storage/provision.py)."""

from __future__ import annotations

TICKETS = "tickets"
TICKET_OWNERS = "ticketowners"
COUNTERS = "counters"
RATE_LIMITS = "ratelimits"
CONTROLS = "controls"
NOTIFICATIONS = "notifications"
DUE = "due"  # the due index: follow-ups, checks and feedback windows by due time (the sweeper's)
ANALYTICS = "analytics"  # per-day tallies: a journal of recorded events and their folded sums
TABLES = (TICKETS, TICKET_OWNERS, COUNTERS, RATE_LIMITS, CONTROLS, NOTIFICATIONS, DUE, ANALYTICS)

AGENT_QUEUE = "agent-actions"
FOLLOWUP_QUEUE = "followups"
CHECK_QUEUE = "agent-checks"
QUEUES = (AGENT_QUEUE, FOLLOWUP_QUEUE, CHECK_QUEUE)


def poison(queue: str) -> str:
    """Where the host moves a message of `queue` that failed its last dequeue."""
    return f"{queue}-poison"
