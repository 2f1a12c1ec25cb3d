"""The autonomous agent pipeline: accept a process request (process.py), act on it exactly once
(worker.py), and later escalate what a scheduled follow-up finds unresolved (checks.py).

What both halves of a request agree on lives here: where it travels and which statuses the agent
may act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.models import Status


@dataclass(frozen=True)
class Queues:
    agent: str
    followups: str
    checks: str


ACTIONABLE = frozenset({Status.NEW, Status.OPEN, Status.PENDING_CLARIFICATION})
