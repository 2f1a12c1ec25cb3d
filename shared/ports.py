"""Ports: what the services need from the outside, as Protocols.

Storage ports (repositories, caps, queue) each have an in-memory fake and a Table/Queue adapter
sharing one contract suite; the health probe is shared/storage/probe.py; the analyser has the
embedded agent and the agent API client; the clock and the telemetry are wired in
shared/container.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from pydantic import BaseModel

from shared.domain.analysis import Analysis
from shared.domain.due import DueItem, DueKind
from shared.domain.models import (
    AgentControls,
    HistoryEntry,
    Notification,
    Page,
    RequestRecord,
    Status,
    Ticket,
    TicketPublic,
)
from shared.domain.queues import Queue
from shared.domain.tally import Tallies

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class WindowLimit:
    """At most `amount` per owner in each fixed window of `seconds` (aligned to the epoch)."""

    amount: int
    seconds: int

    def window(self, at: datetime) -> int:
        return int(at.timestamp()) // self.seconds

    @property
    def per(self) -> str:
        units = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
        return units.get(self.seconds, f"{self.seconds} seconds")

    def usage(self, window: int, used: int) -> WindowUsage:
        return WindowUsage(self.amount, min(used, self.amount), float((window + 1) * self.seconds))


@dataclass(frozen=True)
class WindowUsage:
    limit: int
    used: int
    reset_at: float  # epoch seconds


class RateCounter(Protocol):
    """One rate (`50/minute`) counted per caller in fixed windows shared by all instances."""

    per: str  # the window's unit, for messages ("minute")

    def hit(self, who: str) -> WindowUsage:
        """Count one request of `who`: the limit, the window's count with this one (past the
        limit when it is refused) and when the window resets."""


class QuotaExceeded(Exception):
    def __init__(self, usage: WindowUsage) -> None:
        super().__init__(f"{usage.used} of {usage.limit} used")
        self.usage = usage


MAX_OWNER_KEY = 512  # a Table key holds 1 KiB of UTF-16; the owner index is keyed by the owner


class TicketRepository(Protocol):
    """Tickets and everything in their partition: history entries, and the RequestLedger's records
    of the requests that change them, which `save` commits with the change.

    Every change commits atomically through `save` with one new history entry per version
    step, the last one's `seq` the ticket's new version: new entries are inserted, never
    overwritten, so a concurrent writer that committed one of those versions first makes
    `save` raise ConcurrencyConflict.
    """

    def owner_fits(self, owner: str) -> bool:
        """Whether `owner` can key the owner index: at most MAX_OWNER_KEY characters once
        percent-encoded (Table keys refuse / \\ # ?)."""

    def next_id(self) -> int:
        """A positive id never handed out before, by any instance."""

    def add(self, ticket: Ticket, limit: WindowLimit | None = None) -> WindowUsage | None:
        """Store a new ticket (version 1) and index it under its owner.

        With `limit`, the create is first counted in its owner's fixed window (the one holding
        `ticket.created_at`), atomically with the index row; past the limit nothing is written
        and QuotaExceeded is raised. Exact across instances."""

    def get(self, ticket_id: int) -> Ticket | None: ...

    def save(
        self,
        ticket: Ticket,
        entries: Sequence[HistoryEntry],
        request: RequestRecord | None = None,
        updated: Sequence[HistoryEntry] = (),
        *,
        before_commit: Callable[[], None] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """Commit `ticket` (len(entries) versions past the stored one) with its new history entries
        (seqs up to ticket.version, see check_new_entries), the `updated` earlier entries (a
        rollback marks the entry it undid) and the request's record, all or nothing.
        Raises ConcurrencyConflict.

        The caller's own writes that must land before the commit (`before_commit`: a due item, a
        notification) and after it (`after_commit`: the analytics record, a notice) run beside
        the repository's own (the work-queue entries before, the entries of the queues left
        after): at once, not one after the other. An error of `before_commit` is raised and
        nothing is committed; one of `after_commit` is raised with the change committed."""

    def get_with_request(self, ticket_id: int, request_id: str) -> tuple[Ticket | None, RequestRecord | None]:
        """The ticket and the ledger record of one request, in one read."""

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        """The owner's tickets, newest first, reading only the owner's index partition."""

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        """Every ticket, newest first (staff)."""

    def list_queue(self, queue: Queue, limit: int, cursor: str | None) -> Page:
        """The tickets in `queue` now, newest first, from a maintained index: a page costs a bounded
        number of requests whatever the number of tickets. The cursor is opaque and works for
        its queue only; any other raises ValidationFailed."""

    def history(self, ticket_id: int, limit: int, cursor: str | None) -> Page:
        """History entries of one ticket, newest first."""

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None: ...

    def get_with_entry(self, ticket_id: int, seq: int) -> tuple[Ticket | None, HistoryEntry | None]:
        """The ticket and its history entry `seq`, in one read (a rollback decides on both)."""


class RequestLedger(Protocol):
    """The idempotency ledger: one record per request, under the `scope` its effect changes (the
    ticket id). A request is claimed INPROGRESS (insert-if-absent, with an expiry), then either
    completed with its effect (the effect's own transaction writes the COMPLETED record:
    TicketRepository.save(..., request=...), which is why the records live in the ticket's
    partition), completed without one (`complete`), or released on failure (`release`).
    Every write after the claim is conditional on the claim's ETag, so a claim that expired
    and was taken over by a redelivery can no longer be completed or released by its old holder.
    The protocol on top is shared/services/ledger.py.
    """

    def get(self, scope: int, request_id: str) -> RequestRecord | None:
        """The request's record with its `etag`; None when there is none."""

    def claim(self, scope: int, record: RequestRecord, expired: RequestRecord | None) -> str:
        """Insert an INPROGRESS record, or take over `expired` (a killed worker's) if unchanged;
        returns the claim's ETag. Raises ConcurrencyConflict when another worker holds it."""

    def complete(self, scope: int, record: RequestRecord, etag: str) -> None:
        """Replace our INPROGRESS record with `record` (a request that changed nothing);
        raises ConcurrencyConflict when the record is no longer ours."""

    def release(self, scope: int, request_id: str, etag: str) -> None:
        """Delete our INPROGRESS record so a retry can run; a record that changed since
        (taken over, or completed) is left alone."""


def check_new_entries(ticket: Ticket, entries: Sequence[HistoryEntry]) -> int:
    """The version `ticket` was changed from: every version step adds one entry (most changes are
    one step; a failed feedback answer records the answer and the reopen as two)."""
    seqs = [e.seq for e in entries]
    if not seqs or seqs != list(range(ticket.version - len(seqs) + 1, ticket.version + 1)):
        raise ValueError(
            f"a change to version {ticket.version} must add one history entry per version, in order"
        )
    return ticket.version - len(seqs)


class ActionCaps(Protocol):
    """Global hourly and daily caps on autonomous actions, exact across instances.

    A slot is held by a `holder` (the process request's id): taking it again for the same
    holder takes nothing more, so a retried request reuses the slot of its earlier attempt,
    and `release` gives it back when the action is not committed.
    """

    def try_acquire(self, now: datetime, holder: str) -> str | None:
        """Take (or find already taken) the holder's slot in both windows; None when held,
        else the reason it was refused (`hourly_cap_reached`, `daily_cap_reached`)."""

    def release(self, taken_at: datetime, holder: str) -> None:
        """Give back the holder's slot taken at `taken_at`; nothing when it holds none."""

    def usage(self, now: datetime) -> tuple[int, int]:
        """Actions counted in the current hour and day."""


class ControlsRepository(Protocol):
    """The agent controls, versioned like a ticket, and an append-only audit record per change."""

    def get(self) -> AgentControls | None:
        """The stored controls with their `version`; None when they were never changed."""

    def put(self, controls: AgentControls, audit: dict[str, Any]) -> None:
        """Commit `controls` (version one past the stored one, 1 for the first change) with its
        audit record, all or nothing. Raises ConcurrencyConflict when another change committed
        that version first."""

    def audit_trail(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` audit records, newest first."""


class NotificationStore(Protocol):
    """In-app notifications, one partition per recipient (and one for all staff, which no user id
    maps to), newest first. A notification is stored whole (its model bounds every text)."""

    def add(self, notification: Notification) -> None:
        """Store it once: adding a notification with the same recipient, id and `created_at`
        again changes nothing (a retried cause writes the same notification). Raises ValueError,
        writing nothing, for a recipient whose id cannot key a partition (see owner_fits)."""

    def list(self, user: str | None, limit: int, cursor: str | None) -> Page:
        """The notifications of `user` (None: the staff-wide ones), newest first, `limit` a page;
        `next_cursor` (the last one shown, shared/storage/keys.py NOTIFICATION_CURSOR) continues
        after it, with no gap or repeat, or is None on the last page."""

    def mark_read(self, user: str, key: str) -> bool:
        """Mark the notification of `user` whose key (`notification_row`, as the list's cursors
        are) is `key` read; False when `user` has none with that key. Only the recipient's own
        partition is looked at, so nobody marks another's."""

    def mark_all_read(self, user: str, limit: int) -> int:
        """Mark the newest `limit` notifications of `user` read (one page read and one batch
        written, so the work is bounded whatever the partition holds); how many were unread."""


@dataclass(frozen=True)
class RollbackTally:
    """What the rollback log counted for one reservation."""

    usage: WindowUsage  # the admin's rollbacks in the throttle's trailing window, this one included
    recent: int  # rollbacks in the trailing hour since the last auto-pause, this one included


class RollbackLog(Protocol):
    """The recent rollbacks, in one row shared by all instances: the per-admin throttle
    (ROLLBACK_THROTTLE_RATE, over a trailing window) and the auto-pause count
    (AUTO_PAUSE_ROLLBACKS_PER_HOUR, over the trailing hour), exact across instances.

    A rollback request reserves its place before it commits: a hold on its action's entry, so a
    retried or concurrent rollback of the same action is counted once. A request refused after
    reserving releases its own hold; the entry stays while another request holds it (a forced
    rollback that then commits). One request when uncontended (shared/storage/tables/optimistic.py).
    """

    def reserve(self, action_id: str, admin: str, at: datetime, limit: WindowLimit) -> RollbackTally:
        """Hold the rollback of `action_id` by `admin` at `at` (counted once per action id, at the
        time of its first hold). Raises QuotaExceeded, writing nothing, when `admin` already has
        `limit.amount` rollbacks in the trailing `limit.seconds`. Call it once per request."""

    def release(self, action_id: str) -> None:
        """Give back one hold of a rollback request that was refused; the entry goes with its last
        hold. Nothing when there is none."""

    def paused(self, at: datetime) -> None:
        """The agent was auto-paused at `at`: rollbacks up to then no longer count towards the
        next auto-pause."""


class Probe(Protocol):
    """The storage account as health sees it."""

    def ping(self) -> str | None:
        """None when storage answers, else what went wrong (no secrets)."""

    def queue_depths(self) -> dict[str, int | None]:
        """Approximate depth of each queue and poison queue; None where it could not be read."""


MAX_QUEUE_DELAY_SECONDS = 7 * 86400 - 1  # the longest a Storage queue message can stay invisible


class MessageQueue(Protocol):
    def send(self, queue: str, message: BaseModel, delay_seconds: int = 0) -> None:
        """Enqueue `message` as JSON (serialised here, once), invisible for `delay_seconds`
        (at most MAX_QUEUE_DELAY_SECONDS: a longer wait is chained by the consumer)."""


class Webhook(Protocol):
    """A chat's incoming webhook (Slack, Teams): best effort, bounded in time."""

    def post(self, text: str) -> bool:
        """Post `text` as `{"text": ...}`; True when the webhook took it. Never raises: after its
        bounded retries a failure is logged (never the URL, which is a secret) and False returned."""


class Analyser(Protocol):
    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        """SPEC §6 step 1; raises AgentUnavailable."""


class SimilarTickets(Protocol):
    def similar(
        self, ticket: TicketPublic, candidates: Sequence[TicketPublic], limit: int
    ) -> list[tuple[TicketPublic, float]]:
        """The `candidates` most like `ticket` (never itself), most similar first, with their
        score; at most `limit`, and only those sharing a word with it. Pure: reads no storage."""


class Telemetry(Protocol):
    def action(
        self, ticket_id: int, action_type: str, confidence: float | None, level: str, outcome: str
    ) -> None:
        """An autonomous action (or deferral) was recorded."""

    def rollback(self, ticket_id: int, action_type: str, admin: str) -> None:
        """An admin rolled back an autonomous action (a warning event, `event:rollback`)."""


class DueIndex(Protocol):
    """What is due when (shared/domain/due.py): one partition per minute of due time, so the
    sweeper reads what is due without looking at any ticket. Writes are idempotent."""

    def add(self, item: DueItem) -> None:
        """Store the item; an item with the same id in the same minute is kept as it is."""

    def due(self, since: datetime, now: datetime, limit: int) -> list[DueItem]:
        """At most `limit` items due at or before `now`, from the minute of `since` on, earliest
        minute first."""

    def mark_sent(self, item: DueItem, at: datetime) -> None:
        """Record that the item's message was sent at `at` (one more send). An item removed
        meanwhile stays removed."""

    def remove(self, kind: DueKind, ticket_id: int, seq: int, due_at: datetime) -> None:
        """Remove the item (its work is done); nothing when it is not there."""

    def cursor(self) -> datetime | None:
        """Where the sweeper's next run starts reading (None before its first run)."""

    def set_cursor(self, at: datetime) -> None: ...


class AnalyticsStore(Protocol):
    """The per-day analytics tallies (shared/domain/tally.py), shared by all instances.

    An event's deltas are recorded under the event's id (`{ticket_id}-{version}`: the ticket
    version the event produced), once: recording an id again changes nothing, so a retried or
    redelivered step never counts twice. A read costs a bounded number of round trips whatever
    the number of tickets or events (the Table store: one per year of the window).

    An id's deltas are always the same (a function of the commit's history entries), and an id is
    recorded again only while its event is younger than REPLAY_SECONDS: the Table store keeps a
    folded record's tombstone for TOMBSTONE_SECONDS, after which it could not tell the id again
    (shared/domain/analytics.py).

    What `read` returns may lag the records: the Table store reads its folded sums only, which
    `fold` (the sweeper, every run) brings up to date; `folded_at` says as of when."""

    def record(self, event_id: str, deltas: Tallies) -> None:
        """Add `deltas` (day -> counters) once for `event_id`; again, nothing. Empty deltas: no
        write at all."""

    def read(self, since: date, until: date) -> Tallies:
        """The summed tallies of each day from `since` to `until`, both included (days with
        nothing are absent)."""

    def fold(self, limit: int) -> int:
        """Add up to `limit` recorded events to their days' sums (a background step, each event
        once); how many were folded."""

    def folded_at(self) -> datetime | None:
        """When the last fold run that left nothing behind started: `read` counts every event
        recorded before it. None: not known (never folded), or reads are live (the fake)."""
