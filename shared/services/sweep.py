"""The sweeper: a timer's bounded pass over the due index (shared/domain/due.py).

Each run reads the items due by now from its cursor on, at most `batch` of them, and:

- a follow-up or a check: sends its message (no delay) and records when; an item whose message
  was sent less than `grace` ago is left alone (its consumer may be at it). The consumer removes
  the item when it is done, so an item still there after the grace period had its message lost
  (deleted, expired, poisoned) and is sent again. Duplicates are harmless: the follow-up runs
  once on the ledger, the check acts only while the ticket is at that version. After `max_sends`
  sends the item is dropped with an error log (its message is in the poison queue, which an
  operator replays), so one broken item cannot hold the sweep forever;
- an assumption (the feedback window of an auto-resolution ended): marks the resolution
  `assumed` here, exactly once (the ledger request `assume-{seq}` commits with the change; a
  concurrent sweep loses the version race and finds it COMPLETED), or drops it as moot
  (answered, voided, no longer that resolution). Then the item is removed.

The cursor is the earliest due time still to look at: the earliest item read (a truncated read
returns the earliest first, so nothing before it is left) or `lookback` before now, whichever is
earlier. Writers date an item due in the past "now" (due.schedule), so with clocks within
`lookback` of each other no item lands behind the cursor. A run therefore costs a cursor read, one
query, the work of at most `batch` items and a cursor write: bounded, and the same with 10 or a
million tickets. A failing item is logged and left for the next run; the others go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.domain.assumed import assume, assume_skip_reason
from shared.domain.assumed import request_id as assume_request
from shared.domain.due import DueItem, DueKind, bucket, in_flight
from shared.domain.models import ActionType, CheckMessage, FollowupMessage, RecordStatus
from shared.errors import ConcurrencyConflict
from shared.ports import AnalyticsStore, Clock, DueIndex, MessageQueue, TicketRepository
from shared.services.agent import Queues
from shared.services.followups import history_since
from shared.services.ledger import Once

log = logging.getLogger("resolvemeq.sweep")

SAVE_ATTEMPTS = 3
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)  # before any item


@dataclass(frozen=True)
class SweepTimings:
    batch: int = 200  # items per run; the rest wait for the next run
    grace_seconds: int = 600  # a sent message's consumer gets this long before it is sent again
    max_sends: int = 5  # then the item is dropped (its message sits in the poison queue)
    lookback_seconds: int = 600  # how far behind now the cursor stays (clock skew between writers)
    # Analytics journal rows folded into their day's sums per run (AnalyticsStore.fold): the reads
    # lag by one run, so a run must keep up (README, "Analytics aggregates").
    fold: int = 10000


@dataclass
class SweepReport:
    """What one run did, by item."""

    sent: int = 0  # first sends
    resent: int = 0  # sent again after the grace period
    waiting: int = 0  # sent recently, left to their consumer
    assumed: int = 0
    moot: int = 0  # assumptions dropped: answered, voided, no longer that resolution
    dropped: int = 0  # sent max_sends times and still there
    failed: int = 0  # left for the next run
    folded: int = 0  # analytics events folded into their day's sums
    outcomes: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self,
        due: DueIndex,
        tickets: TicketRepository,
        queue: MessageQueue,
        clock: Clock,
        queues: Queues,
        timings: SweepTimings,
        analytics: AnalyticsStore | None = None,
    ) -> None:
        self._due, self._tickets, self._queue, self._clock = due, tickets, queue, clock
        self._queues, self._timings = queues, timings
        self._analytics = analytics

    def run(self) -> SweepReport:
        """One pass; raises only when the index itself cannot be read or its cursor written."""
        now = self._clock()
        lookback = now - timedelta(seconds=self._timings.lookback_seconds)
        stored = self._due.cursor()
        since = stored or BEGINNING  # a first run reads from the start: one query all the same
        items = self._due.due(since, now, self._timings.batch)
        report = SweepReport()
        for item in items:
            try:
                outcome = self._handle(item, report)
            except Exception:
                log.exception("sweep: %s failed; left for the next run", item.id)
                report.failed += 1
                continue
            report.outcomes.append(f"{item.id}:{outcome}")
        cursor = min([lookback, *(i.due_at for i in items)])
        if stored is None or bucket(cursor) != bucket(stored):  # the index reads whole minutes
            self._due.set_cursor(cursor)
        report.folded = self._fold()
        log.info(
            "sweep: %s sent, %s resent, %s waiting, %s assumed, %s moot, %s dropped, %s failed",
            report.sent, report.resent, report.waiting, report.assumed, report.moot,
            report.dropped, report.failed,
        )  # fmt: skip
        return report

    def _fold(self) -> int:
        """Fold the analytics journal into the sums the reads see (bounded: `timings.fold` rows). A
        failure is logged and left for the next run (the reads lag a run more)."""
        if self._analytics is None:
            return 0
        try:
            return self._analytics.fold(self._timings.fold)
        except Exception:
            log.exception("sweep: folding the analytics journal failed; left for the next run")
            return 0

    def _handle(self, item: DueItem, report: SweepReport) -> str:
        if item.kind == DueKind.ASSUME:
            outcome = self._assume(item)
            if outcome == "assumed":
                report.assumed += 1
            else:
                report.moot += 1
            self._due.remove(item.kind, item.ticket_id, item.seq, item.due_at)
            return outcome
        now = self._clock()
        if in_flight(item, now, timedelta(seconds=self._timings.grace_seconds)):
            report.waiting += 1
            return "waiting"
        if item.sends >= self._timings.max_sends:
            log.error(
                "sweep: %s was sent %s times and is still due; dropped (see the %s poison queue)",
                item.id, item.sends, self._queue_of(item),
            )  # fmt: skip
            self._due.remove(item.kind, item.ticket_id, item.seq, item.due_at)
            report.dropped += 1
            return "dropped"
        # Send first, then record it: a crash in between sends it again next run (harmless),
        # never leaves an item marked sent whose message never went.
        self._queue.send(self._queue_of(item), self._message(item))
        self._due.mark_sent(item, now)
        if item.sends:
            report.resent += 1
            return "resent"
        report.sent += 1
        return "sent"

    def _queue_of(self, item: DueItem) -> str:
        return self._queues.followups if item.kind == DueKind.FOLLOWUP else self._queues.checks

    @staticmethod
    def _message(item: DueItem) -> FollowupMessage | CheckMessage:
        if item.kind == DueKind.FOLLOWUP:
            return FollowupMessage(ticket_id=item.ticket_id, action_seq=item.seq, due_at=item.due_at)
        return CheckMessage(ticket_id=item.ticket_id, action_seq=item.seq, due_at=item.due_at)

    def _assume(self, item: DueItem) -> str:
        """Mark the resolution of the auto-resolution at `item.seq` assumed, once; or say why not."""
        request = assume_request(item.seq)
        for _ in range(SAVE_ATTEMPTS):
            ticket, record = self._tickets.get_with_request(item.ticket_id, request)
            if ticket is None:
                return "missing"
            if record is not None and record.status == RecordStatus.COMPLETED:
                return "duplicate"
            reason = assume_skip_reason(ticket, item.seq, history_since(self._tickets, ticket, item.seq))
            if reason is not None:
                return reason
            changed, entry = assume(ticket, item.seq, self._clock())
            done = Once.completed(request, ActionType.RESOLUTION_ASSUMED, changed.version, "assumed")
            try:
                self._tickets.save(changed, [entry], request=done)
                return "assumed"
            except ConcurrencyConflict:
                continue  # changed meanwhile (an answer, a rollback, another sweep): decide again
        raise ConcurrencyConflict(f"ticket {item.ticket_id} kept changing while its resolution was assumed")
