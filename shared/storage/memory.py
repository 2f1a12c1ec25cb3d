"""In-memory fakes of the storage ports, for fast unit tests of services."""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from shared.domain.due import DueItem, DueKind, bucket, item_id
from shared.domain.models import (
    AgentControls,
    HistoryEntry,
    Notification,
    Page,
    RequestRecord,
    Status,
    Ticket,
)
from shared.domain.queues import Queue
from shared.domain.tally import Tallies
from shared.errors import ConcurrencyConflict, ValidationFailed
from shared.ports import (
    MAX_OWNER_KEY,
    QuotaExceeded,
    RollbackTally,
    WindowLimit,
    WindowUsage,
    check_new_entries,
)
from shared.storage.keys import (
    history_row,
    notification_partition,
    notification_row,
    owner_key,
    queue_cursor,
    queue_cursor_position,
    seq_of,
    ticket_id_of,
    ticket_key,
)


class InMemoryRequestLedger:
    """The ledger's records; the InMemoryTicketRepository built on it shares its lock, so that its
    `save` writes the COMPLETED record atomically with the ticket change, like the Table adapter."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._records: dict[tuple[int, str], RequestRecord] = {}
        self._etags = itertools.count(1)

    def get(self, scope: int, request_id: str) -> RequestRecord | None:
        with self.lock:
            record = self._records.get((scope, request_id))
            return record.model_copy() if record else None

    def put(self, scope: int, record: RequestRecord) -> str:
        with self.lock:
            etag = str(next(self._etags))
            self._records[(scope, record.request_id)] = record.model_copy(update={"etag": etag})
            return etag

    def claim(self, scope: int, record: RequestRecord, expired: RequestRecord | None) -> str:
        with self.lock:
            current = self._records.get((scope, record.request_id))
            if current is not None and (expired is None or current.etag != expired.etag):
                raise ConcurrencyConflict(f"request {record.request_id} is held")
            return self.put(scope, record)

    def complete(self, scope: int, record: RequestRecord, etag: str) -> None:
        with self.lock:
            current = self._records.get((scope, record.request_id))
            if current is None or current.etag != etag:
                raise ConcurrencyConflict(f"request {record.request_id} is no longer ours")
            self.put(scope, record)

    def release(self, scope: int, request_id: str, etag: str) -> None:
        with self.lock:
            current = self._records.get((scope, request_id))
            if current is not None and current.etag == etag:
                del self._records[(scope, request_id)]


class InMemoryTicketRepository:
    def __init__(self, ledger: InMemoryRequestLedger | None = None) -> None:
        self.ledger = ledger or InMemoryRequestLedger()
        self._lock = self.ledger.lock
        self._ids = itertools.count(1)
        self._tickets: dict[int, Ticket] = {}
        self._entries: dict[int, dict[int, HistoryEntry]] = {}
        self._creates: dict[tuple[str, int], int] = {}

    def owner_fits(self, owner: str) -> bool:
        return len(owner_key(owner)) <= MAX_OWNER_KEY

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def add(self, ticket: Ticket, limit: WindowLimit | None = None) -> WindowUsage | None:
        with self._lock:
            if ticket.id in self._tickets:
                raise ConcurrencyConflict(f"ticket {ticket.id} exists")
            usage = None
            if limit is not None:
                window = (ticket.user, limit.window(ticket.created_at))
                used = self._creates.get(window, 0) + 1
                if used > limit.amount:
                    raise QuotaExceeded(limit.usage(window[1], used))
                self._creates[window] = used
                usage = limit.usage(window[1], used)
            self._tickets[ticket.id] = ticket.model_copy(deep=True)
            self._entries[ticket.id] = {}
            return usage

    def get(self, ticket_id: int) -> Ticket | None:
        with self._lock:
            ticket = self._tickets.get(ticket_id)
            return ticket.model_copy(deep=True) if ticket else None

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
        base = check_new_entries(ticket, entries)
        if before_commit is not None:
            before_commit()
        with self._lock:
            stored = self._tickets.get(ticket.id)
            if stored is None or stored.version != base:
                raise ConcurrencyConflict(f"ticket {ticket.id} changed concurrently")
            self._tickets[ticket.id] = ticket.model_copy(deep=True)
            for entry in [*updated, *entries]:
                self._entries[ticket.id][entry.seq] = entry.model_copy(deep=True)
            if request is not None:
                self.ledger.put(ticket.id, request)
        if after_commit is not None:
            after_commit()

    def get_with_request(self, ticket_id: int, request_id: str) -> tuple[Ticket | None, RequestRecord | None]:
        with self._lock:
            ticket = self._tickets.get(ticket_id)
            return (ticket.model_copy(deep=True) if ticket else None), self.ledger.get(ticket_id, request_id)

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        return self._page(lambda t: t.user == owner and (status is None or t.status == status), limit, cursor)

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        return self._page(lambda t: status is None or t.status == status, limit, cursor)

    def list_queue(self, queue: Queue, limit: int, cursor: str | None) -> Page:
        after = None
        if cursor is not None:
            after = queue_cursor_position(queue.name, cursor)
            if after is None:
                raise ValidationFailed(
                    "The cursor is not one this list gave out.",
                    [{"loc": "cursor", "msg": "Use the next_cursor of the same list, unchanged."}],
                )
        page = self._page(queue.matches, limit, after)
        more = page.next_cursor is not None
        return Page(
            results=page.results, next_cursor=queue_cursor(queue.name, page.results[-1].id) if more else None
        )

    def _page(self, keep: Callable[[Ticket], bool], limit: int, cursor: str | None) -> Page:
        after = ticket_id_of(cursor) if cursor else None
        with self._lock:
            ids = sorted((i for i in self._tickets if after is None or i < after), reverse=True)
            found = [self._tickets[i].model_copy(deep=True) for i in ids if keep(self._tickets[i])]
        page = found[:limit]
        more = len(found) > limit
        return Page(results=page, next_cursor=ticket_key(page[-1].id) if more else None)

    def history(self, ticket_id: int, limit: int, cursor: str | None) -> Page:
        after = seq_of(cursor) if cursor else None
        with self._lock:
            entries = self._entries.get(ticket_id, {})
            seqs = sorted((s for s in entries if after is None or s < after), reverse=True)
            found = [entries[s].model_copy(deep=True) for s in seqs]
        page = found[:limit]
        more = len(found) > limit
        return Page(results=page, next_cursor=history_row(page[-1].seq) if more else None)

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None:
        with self._lock:
            entry = self._entries.get(ticket_id, {}).get(seq)
            return entry.model_copy(deep=True) if entry else None

    def get_with_entry(self, ticket_id: int, seq: int) -> tuple[Ticket | None, HistoryEntry | None]:
        with self._lock:
            return self.get(ticket_id), self.get_entry(ticket_id, seq)


class InMemoryActionCaps:
    def __init__(self, per_hour: int, per_day: int) -> None:
        self._per_hour, self._per_day = per_hour, per_day
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._holders: dict[tuple[str, str], str] = {}  # (day, holder) -> hour

    def try_acquire(self, now: datetime, holder: str) -> str | None:
        hour, day = now.strftime("%Y%m%d%H"), now.strftime("%Y%m%d")
        with self._lock:
            if (day, holder) in self._holders:
                return None
            if self._counts.get(day, 0) >= self._per_day:
                return "daily_cap_reached"
            if self._counts.get(hour, 0) >= self._per_hour:
                return "hourly_cap_reached"
            self._counts[hour] = self._counts.get(hour, 0) + 1
            self._counts[day] = self._counts.get(day, 0) + 1
            self._holders[(day, holder)] = hour
            return None

    def release(self, taken_at: datetime, holder: str) -> None:
        day = taken_at.strftime("%Y%m%d")
        with self._lock:
            hour = self._holders.pop((day, holder), None)
            if hour is not None:
                self._counts[hour] -= 1
                self._counts[day] -= 1

    def usage(self, now: datetime) -> tuple[int, int]:
        with self._lock:
            return self._counts.get(now.strftime("%Y%m%d%H"), 0), self._counts.get(now.strftime("%Y%m%d"), 0)


class InMemoryControlsRepository:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._controls: AgentControls | None = None
        self._versions: set[int] = set()
        self.audit: list[dict[str, Any]] = []

    def get(self) -> AgentControls | None:
        with self._lock:
            return self._controls.model_copy() if self._controls else None

    def put(self, controls: AgentControls, audit: dict[str, Any]) -> None:
        with self._lock:  # like the Table adapter: each version's audit record is inserted once
            if controls.version in self._versions:
                raise ConcurrencyConflict(f"controls version {controls.version} was committed first")
            self._versions.add(controls.version)
            self._controls = controls.model_copy()
            self.audit.append(dict(audit))

    def audit_trail(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a) for a in reversed(self.audit[-limit:])] if limit > 0 else []


class InMemoryNotificationStore:
    """Keyed and ordered as the Table adapter keys its rows, so its cursors are the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_partition: dict[str, dict[str, Notification]] = {}

    def add(self, notification: Notification) -> None:
        partition = notification_partition(notification.user)
        if len(partition) > MAX_OWNER_KEY:
            raise ValueError(
                f"a recipient id may take at most {MAX_OWNER_KEY} characters once percent-encoded"
            )
        row = notification_row(notification.created_at, notification.id)
        with self._lock:
            self._by_partition.setdefault(partition, {}).setdefault(row, notification.model_copy(deep=True))

    def list(self, user: str | None, limit: int, cursor: str | None) -> Page:
        with self._lock:
            rows = self._by_partition.get(notification_partition(user), {})
            found = [rows[r].model_copy(deep=True) for r in sorted(rows) if cursor is None or r > cursor]
        page = found[:limit]
        more = len(found) > limit
        return Page(
            results=page, next_cursor=notification_row(page[-1].created_at, page[-1].id) if more else None
        )

    def mark_read(self, user: str, key: str) -> bool:
        with self._lock:
            rows = self._by_partition.get(notification_partition(user), {})
            if key not in rows:
                return False
            rows[key] = rows[key].model_copy(update={"read": True})
            return True

    def mark_all_read(self, user: str, limit: int) -> int:
        with self._lock:
            rows = self._by_partition.get(notification_partition(user), {})
            unread = [r for r in sorted(rows)[:limit] if not rows[r].read]
            for r in unread:
                rows[r] = rows[r].model_copy(update={"read": True})
            return len(unread)


class InMemoryRollbackLog:
    HOUR = timedelta(hours=1)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, datetime]] = {}  # action id -> (admin, at)
        self._holds: dict[str, int] = {}  # action id -> requests holding it
        self._paused_at: datetime | None = None

    def reserve(self, action_id: str, admin: str, at: datetime, limit: WindowLimit) -> RollbackTally:
        with self._lock:
            mine = sorted(
                t
                for a, t in self._entries.values()
                if a == admin and t > at - timedelta(seconds=limit.seconds)
            )
            if action_id not in self._entries:
                if len(mine) >= limit.amount:
                    reset = ((mine[0] if mine else at) + timedelta(seconds=limit.seconds)).timestamp()
                    raise QuotaExceeded(WindowUsage(limit.amount, limit.amount, reset))
                self._entries[action_id] = (admin, at)
                mine.append(at)
            self._holds[action_id] = self._holds.get(action_id, 0) + 1
            since = max(at - self.HOUR, self._paused_at) if self._paused_at else at - self.HOUR
            recent = sum(1 for _, t in self._entries.values() if t > since)
            # a retry reserved before the window began counts once, but not in the window
            reset = (min(mine, default=at) + timedelta(seconds=limit.seconds)).timestamp()
            return RollbackTally(WindowUsage(limit.amount, len(mine), reset), recent)

    def release(self, action_id: str) -> None:
        with self._lock:
            if action_id not in self._entries:
                return
            self._holds[action_id] -= 1
            if not self._holds[action_id]:
                del self._entries[action_id], self._holds[action_id]

    def paused(self, at: datetime) -> None:
        with self._lock:
            self._paused_at = max(at, self._paused_at) if self._paused_at else at


class InMemoryMessageQueue:
    """Messages kept in order with their delay, for services' unit tests."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], int]] = []
        self._lock = threading.Lock()

    def send(self, queue: str, message: BaseModel, delay_seconds: int = 0) -> None:
        payload = json.loads(message.model_dump_json(exclude_none=True))  # as a consumer would read it
        with self._lock:
            self.sent.append((queue, payload, delay_seconds))

    def messages(self, queue: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for q, p, _ in self.sent if q == queue]


class InMemoryDueIndex:
    """Keyed as the Table adapter keys its rows: (minute bucket, item id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], DueItem] = {}
        self._cursor: datetime | None = None
        self.requests = 0  # storage requests the Table adapter would send: the sweep's bound

    def add(self, item: DueItem) -> None:
        with self._lock:
            self.requests += 1
            self._rows.setdefault((item.bucket, item.id), item.model_copy())

    def due(self, since: datetime, now: datetime, limit: int) -> list[DueItem]:
        with self._lock:
            self.requests += 1
            first, last = bucket(since), bucket(now)
            keys = sorted(k for k in self._rows if first <= k[0] <= last and self._rows[k].due_at <= now)
            return [self._rows[k].model_copy() for k in keys[:limit]]

    def mark_sent(self, item: DueItem, at: datetime) -> None:
        with self._lock:
            self.requests += 1
            key = (item.bucket, item.id)
            if key in self._rows:
                stored = self._rows[key]
                self._rows[key] = stored.model_copy(update={"enqueued_at": at, "sends": item.sends + 1})

    def remove(self, kind: DueKind, ticket_id: int, seq: int, due_at: datetime) -> None:
        with self._lock:
            self.requests += 1
            self._rows.pop((bucket(due_at), item_id(kind, ticket_id, seq)), None)

    def cursor(self) -> datetime | None:
        with self._lock:
            self.requests += 1
            return self._cursor

    def set_cursor(self, at: datetime) -> None:
        with self._lock:
            self.requests += 1
            self._cursor = at

    def items(self) -> list[DueItem]:
        """Every stored item, earliest bucket first (for tests)."""
        with self._lock:
            return [self._rows[k].model_copy() for k in sorted(self._rows)]


class InMemoryAnalytics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[tuple[str, date]] = set()
        self._days: Tallies = {}

    def record(self, event_id: str, deltas: Tallies) -> None:
        # Once per event and day, as the Table adapter's insert per day: zeros are no write.
        with self._lock:
            for day, tally in deltas.items():
                kept = {name: n for name, n in tally.items() if n}
                if kept and (event_id, day) not in self._seen:
                    self._seen.add((event_id, day))
                    self._days.setdefault(day, Counter()).update(kept)

    def read(self, since: date, until: date) -> Tallies:
        with self._lock:
            found = {d: Counter({k: n for k, n in t.items() if n}) for d, t in self._days.items()}
            return {d: t for d, t in found.items() if since <= d <= until and t}

    def fold(self, limit: int) -> int:
        return 0  # nothing to compact: every record is summed at once

    def folded_at(self) -> datetime | None:
        return None  # reads are live: nothing waits for a fold
