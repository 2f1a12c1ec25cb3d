"""The due index: what must happen to a ticket at a later time (a follow-up, a scheduled check, the
end of a feedback window), one item each, found by the sweeper by due time (shared/services/sweep.py).

An item is written BEFORE the change that makes it due could be lost (the worker writes it before
its commit; the follow-up consumer writes the feedback window's before removing its own), and is
removed by whoever finishes it. So every crash leaves an item behind, never a lost obligation: an
item whose work never committed, or was already done, finds its ticket moved on and is dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel


class DueKind(StrEnum):
    FOLLOWUP = "followup"  # ask the owner whether an auto-resolution held (the followups queue)
    CHECK = "check"  # look again at a SCHEDULE_FOLLOWUP (the agent-checks queue)
    ASSUME = "assume"  # the feedback window of an auto-resolution ends: pending becomes assumed


BUCKET_FORMAT = "%Y%m%d%H%M"  # one partition per minute of due time; sorts as time does


class DueItem(BaseModel):
    """One scheduled thing: `kind` for the action at version `seq` of ticket `ticket_id`, due at
    `due_at`. `enqueued_at` and `sends` say when and how often the sweeper sent its message."""

    kind: DueKind
    ticket_id: int
    seq: int
    due_at: datetime
    enqueued_at: datetime | None = None
    sends: int = 0

    @property
    def id(self) -> str:
        return item_id(self.kind, self.ticket_id, self.seq)

    @property
    def bucket(self) -> str:
        return bucket(self.due_at)


def item_id(kind: DueKind, ticket_id: int, seq: int) -> str:
    return f"{kind.value}-{ticket_id}-{seq}"


def bucket(at: datetime) -> str:
    """The partition of an item due at `at` (UTC minute)."""
    return at.astimezone(UTC).strftime(BUCKET_FORMAT)


def schedule(kind: DueKind, ticket_id: int, seq: int, due: datetime, now: datetime) -> DueItem:
    """The item to write now: an item due in the past is dated now, so it lands in a bucket the
    sweeper has not left behind (it only looks back a little before its cursor)."""
    return DueItem(kind=kind, ticket_id=ticket_id, seq=seq, due_at=max(due, now))


def in_flight(item: DueItem, now: datetime, grace: timedelta) -> bool:
    """Its message was sent less than `grace` ago: its consumer may still be at it."""
    return item.enqueued_at is not None and now < item.enqueued_at + grace
