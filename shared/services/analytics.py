"""Recording each committed event's analytics delta, in one place: a TicketRepository decorator.

Every change of a ticket commits through `add` (creation) or `save` (one history entry per version
step), so wrapping the repository records every event, whichever service made it, and services
stay as they are. After the inner call returns (the change committed), the commit's delta (the
sum of its new entries' deltas, shared/domain/analytics.py: one insert even for an answer and its
reopen) is recorded under the commit's event id `{ticket}-{version}` (creation: `{id}-1`): once,
since the store counts an id once.

Never before the commit: a change that did not commit counts nothing. A record that fails after the
commit (a storage outage, a crash in between) must not fail the request, whose change stands: it
is logged (a warning, which Sentry keeps as a breadcrumb) and repaired by

- a redelivery: a queue consumer's retry finds its request COMPLETED in the ledger (the duplicate
  path, `get_with_request` or the ledger's `get`), and the entries that request committed are
  recorded again from the history: idempotent, so a record that was not lost changes nothing.
  Only while the event is younger than REPLAY_SECONDS: the store keeps a folded record's
  tombstone (which a record again conflicts with) for TOMBSTONE_SECONDS, after which recording
  one again would count it twice;
- the process itself: a record that failed is kept (RetryingAnalytics) and tried again before the
  next record and before each fold (the sweeper's, every minute), while younger than
  REPLAY_SECONDS; so a storage outage between commits and their records costs no figure once
  storage is back, unless the process dies first;
- `manage analytics recompute` (shared/services/recompute.py), for everything else (a process
  that died with records it had not written) and for anything older.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from shared.domain import analytics
from shared.domain.decision import Thresholds
from shared.domain.models import HistoryEntry, Page, RecordStatus, RequestRecord, Status, Ticket
from shared.domain.tally import Tallies
from shared.ports import AnalyticsStore, Clock, RequestLedger, TicketRepository, WindowLimit, WindowUsage

log = logging.getLogger("resolvemeq.analytics")

MAX_REPLAY_STEPS = 3  # entries one request commits at most (an answer and its reopen: 2)
MAX_UNRECORDED = 10_000  # records a process keeps for retry during an outage (a few MB at most)


class RetryingAnalytics:
    """An AnalyticsStore whose failed records are kept and tried again, by this process, before its
    next record and before each fold, while younger than REPLAY_SECONDS (a record that did land
    before its call failed is then kept by its tombstone for TOMBSTONE_SECONDS, so the retry
    conflicts and counts nothing). A failed record still raises, for its caller to log."""

    def __init__(self, inner: AnalyticsStore, clock: Clock) -> None:
        self.inner, self.clock = inner, clock
        self._lock = threading.Lock()
        self._unrecorded: dict[str, tuple[datetime, Tallies]] = {}

    def __getattr__(self, name: str) -> Any:  # what an adapter has beyond the port (tests, bench)
        return getattr(self.inner, name)

    def record(self, event_id: str, deltas: Tallies) -> None:
        self.retry()
        try:
            self.inner.record(event_id, deltas)
        except Exception:
            with self._lock:
                if len(self._unrecorded) >= MAX_UNRECORDED:
                    oldest = min(self._unrecorded, key=lambda e: self._unrecorded[e][0])
                    log.warning("analytics: dropping unrecorded event %s (recompute repairs it)", oldest)
                    del self._unrecorded[oldest]
                self._unrecorded.setdefault(event_id, (self.clock(), deltas))
            raise

    def retry(self) -> int:
        """Try the kept records again, oldest first; how many were recorded. Stops at the first
        that fails (storage is still out)."""
        with self._lock:
            if not self._unrecorded:
                return 0
            kept = sorted(self._unrecorded.items(), key=lambda item: item[1][0])
        young = self.clock() - timedelta(seconds=analytics.REPLAY_SECONDS)
        done = 0
        for event_id, (failed_at, deltas) in kept:
            if failed_at < young:
                log.warning("analytics: event %s not recorded in time (recompute repairs it)", event_id)
            else:
                try:
                    self.inner.record(event_id, deltas)
                except Exception:
                    return done
                done += 1
            with self._lock:
                self._unrecorded.pop(event_id, None)
        return done

    def read(self, since: date, until: date) -> Tallies:
        return self.inner.read(since, until)

    def fold(self, limit: int) -> int:
        try:
            self.retry()
        except Exception:  # a retry problem never stops the fold
            log.warning("analytics: retrying unrecorded events failed", exc_info=True)
        return self.inner.fold(limit)

    def folded_at(self) -> datetime | None:
        return self.inner.folded_at()


class Recording:
    """A TicketRepository that records the analytics of every change it commits."""

    def __init__(
        self, inner: TicketRepository, store: AnalyticsStore, thresholds: Thresholds, clock: Clock
    ) -> None:
        self.inner, self.store, self.thresholds, self.clock = inner, store, thresholds, clock

    def __getattr__(self, name: str) -> Any:  # what a fake has beyond the port (tests)
        return getattr(self.inner, name)

    # The reads, as the inner repository's.
    def owner_fits(self, owner: str) -> bool:
        return self.inner.owner_fits(owner)

    def next_id(self) -> int:
        return self.inner.next_id()

    def get(self, ticket_id: int) -> Ticket | None:
        return self.inner.get(ticket_id)

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        return self.inner.list_for_owner(owner, status, limit, cursor)

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        return self.inner.list_all(status, limit, cursor)

    def history(self, ticket_id: int, limit: int, cursor: str | None) -> Page:
        return self.inner.history(ticket_id, limit, cursor)

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None:
        return self.inner.get_entry(ticket_id, seq)

    def get_with_entry(self, ticket_id: int, seq: int) -> tuple[Ticket | None, HistoryEntry | None]:
        return self.inner.get_with_entry(ticket_id, seq)

    # The writes, recorded after they commit.
    def add(self, ticket: Ticket, limit: WindowLimit | None = None) -> WindowUsage | None:
        usage = self.inner.add(ticket, limit)
        self._record(analytics.event_id(ticket.id, 1), lambda: analytics.created(ticket))
        return usage

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
        def committed() -> None:
            if entries:
                self._record(analytics.event_id(ticket.id, ticket.version), lambda: self._deltas(entries))
            if after_commit is not None:
                after_commit()

        self.inner.save(
            ticket, entries, request, updated, before_commit=before_commit, after_commit=committed
        )

    def get_with_request(self, ticket_id: int, request_id: str) -> tuple[Ticket | None, RequestRecord | None]:
        ticket, record = self.inner.get_with_request(ticket_id, request_id)
        if ticket is not None and record is not None:
            self.replay(ticket_id, record)
        return ticket, record

    def replay(self, ticket_id: int, record: RequestRecord) -> int:
        """A request found COMPLETED (a redelivery): record again what it committed (its entries,
        the newest back to the one of its action type: the same commit, so the same id and deltas),
        while young enough. How many entries it recorded."""
        if record.status != RecordStatus.COMPLETED or record.ticket_version is None:
            return 0
        young = self.clock() - timedelta(seconds=analytics.REPLAY_SECONDS)
        entries: list[HistoryEntry] = []
        try:
            for seq in range(record.ticket_version, max(1, record.ticket_version - MAX_REPLAY_STEPS), -1):
                entry = self.inner.get_entry(ticket_id, seq)
                if entry is None or entry.executed_at < young:
                    return 0  # too old to record again (the store may have folded it): recompute's
                entries.append(entry)
                if entry.action_type == record.action_type:
                    break
            else:
                return 0  # not the commit the record names: recording part of it would be wrong
            self.store.record(analytics.event_id(ticket_id, record.ticket_version), self._deltas(entries))
        except Exception:
            log.warning(
                "analytics: replaying ticket %s request %s failed",
                ticket_id,
                record.request_id,
                exc_info=True,
            )
            return 0
        return len(entries)

    def _deltas(self, entries: Sequence[HistoryEntry]) -> Tallies:
        """One commit's entries (an answer and its reopen) are one event: one record, one insert."""
        return analytics.add_up(analytics.delta(e, self.thresholds) for e in entries)

    def _record(self, event: str, deltas: Callable[[], Tallies]) -> None:
        try:
            self.store.record(event, deltas())
        except Exception:
            # The change committed: the request succeeds. A redelivery or `manage analytics
            # recompute` repairs the figures (module docstring).
            log.warning("analytics: event %s committed but not recorded", event, exc_info=True)


class ReplayingLedger:
    """The RequestLedger the run-once consumers claim on: a claim that finds its request COMPLETED
    (a redelivery, Once.claim) records again what that request committed (Recording.replay)."""

    def __init__(self, inner: RequestLedger, recording: Recording) -> None:
        self.inner, self.recording = inner, recording

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, scope: int, request_id: str) -> RequestRecord | None:
        record = self.inner.get(scope, request_id)
        if record is not None:
            self.recording.replay(scope, record)
        return record

    def claim(self, scope: int, record: RequestRecord, expired: RequestRecord | None) -> str:
        return self.inner.claim(scope, record, expired)

    def complete(self, scope: int, record: RequestRecord, etag: str) -> None:
        self.inner.complete(scope, record, etag)

    def release(self, scope: int, request_id: str, etag: str) -> None:
        self.inner.release(scope, request_id, etag)
