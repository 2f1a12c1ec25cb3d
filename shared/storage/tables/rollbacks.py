"""The rollback log (RollbackLog) in one row of the controls table."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableClient

from shared.errors import RollbackLogFull
from shared.ports import QuotaExceeded, RollbackTally, WindowLimit, WindowUsage
from shared.storage.sizes import TABLE_STRING_UNITS
from shared.storage.tables.optimistic import OptimisticRow
from shared.storage.tables.rows import Row

# Its own partition: the controls rows live in `agent` (and `agent-audit`), never here.
ROLLBACKS_PARTITION = "rollbacks"
ROLLBACKS_ROW = "log"
HOUR = 3600
US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Entries are ASCII, so a character is one UTF-16 unit; 14 full properties (14 x 64 KiB) plus the
# keys and `PausedAt` stay well inside the 1 MiB an entity may take (as Azure counts it, in UTF-16;
# Azurite counts UTF-8, so the contract test checks the arithmetic rather than relying on it).
MAX_CHUNKS = 14
CHUNK_UNITS = TABLE_STRING_UNITS
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")  # history entry ids ("12-3") are kept readable


@dataclass(frozen=True)
class Entry:
    action: str  # the action id, or a digest of it when it is long or unusual
    admin: str  # a digest of the admin's subject: equality is all the log needs of it
    at: int  # microseconds since the epoch
    holds: int = 1  # the rollback requests holding it (RollbackLog.release gives one back)

    def text(self) -> str:
        held = f" {self.holds}" if self.holds != 1 else ""
        return f"{self.action} {self.admin} {self.at}{held}"


def action_key(action_id: str) -> str:
    if _PLAIN_ID.fullmatch(action_id):
        return action_id
    return "#" + hashlib.sha256(action_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def admin_tag(admin: str) -> str:
    return hashlib.sha256(admin.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def entries_of(props: Row) -> list[Entry]:
    entries = []
    for i in range(MAX_CHUNKS):
        for text in str(props.get(f"E{i}", "")).split(";"):
            if text:
                action, admin, at, *holds = text.split(" ")
                entries.append(Entry(action, admin, int(at), int(holds[0]) if holds else 1))
    return entries


def encode(entries: list[Entry], paused_at: int) -> Row | None:
    """The row holding `entries` (oldest first) in as few properties as they fit; None when they
    need more than MAX_CHUNKS properties."""
    chunks: list[list[str]] = [[]]
    size = 0
    for entry in entries:
        text = entry.text()
        if chunks[-1] and size + 1 + len(text) > CHUNK_UNITS:
            chunks.append([])
            size = 0
        size += len(text) + (1 if chunks[-1] else 0)
        chunks[-1].append(text)
    if len(chunks) > MAX_CHUNKS:
        return None
    row: Row = {f"E{i}": ";".join(chunk) for i, chunk in enumerate(chunks) if chunk}
    if paused_at:
        row["PausedAt"] = str(paused_at)
    return row


def paused_of(props: Row) -> int:
    return int(props.get("PausedAt") or 0)


class TableRollbackLog:
    """The recent rollbacks in one ETag-guarded row: each entry is (action, admin, time, holds),
    with the time of the last auto-pause.

    Every change is a read-change-write of the row under its ETag (OptimisticRow), so counts
    are exact with any number of instances, and an uncontended change on the cached row is one
    request. A refusal, a repeated reservation or a full log is confirmed on a fresh read, since
    a release elsewhere may have made the cached row stale. Each reservation prunes the entries
    older than the longest window (the throttle's or the hour). The entries fill the properties
    E0..E13 in order; a reservation that would need more (some 6,000 rollbacks within the window)
    is refused with RollbackLogFull, writing nothing, rather than dropping counted rollbacks.
    """

    def __init__(self, controls: TableClient) -> None:
        self._row = OptimisticRow(controls, ROLLBACKS_PARTITION, ROLLBACKS_ROW, trust_cached_decline=False)

    def reserve(self, action_id: str, admin: str, at: datetime, limit: WindowLimit) -> RollbackTally:
        key, who, now = action_key(action_id), admin_tag(admin), micros(at)
        window_start = now - limit.seconds * US
        keep_after = now - max(limit.seconds, HOUR) * US
        tally: RollbackTally | None = None
        refused: WindowUsage | None = None
        full = False

        def take(props: Row) -> Row | None:
            nonlocal tally, refused, full
            tally, refused, full = None, None, False
            entries, paused_at = entries_of(props), paused_of(props)
            mine = sorted(e.at for e in entries if e.admin == who and e.at > window_start)
            known = any(e.action == key for e in entries)
            if not known:
                if len(mine) >= limit.amount:
                    reset = (mine[0] if mine else now) + limit.seconds * US
                    refused = WindowUsage(limit.amount, limit.amount, reset / US)
                    return None
                entries = [e for e in entries if e.at > keep_after] + [Entry(key, who, now)]
                mine.append(now)
            else:  # one more request holds it: counted once, kept until every holder lets go
                entries = [replace(e, holds=e.holds + 1) if e.action == key else e for e in entries]
            since = max(now - HOUR * US, paused_at)
            recent = sum(1 for e in entries if e.at > since)
            reset = (mine[0] if mine else now) + limit.seconds * US
            tally = RollbackTally(WindowUsage(limit.amount, len(mine), reset / US), recent)
            row = encode(entries, paused_at)
            full = row is None
            return row

        self._row.update(take)
        if refused is not None:
            raise QuotaExceeded(refused)
        if full:
            raise RollbackLogFull("Too many rollbacks were counted in the last window; try again later.")
        assert tally is not None
        return tally

    def release(self, action_id: str) -> None:
        key = action_key(action_id)

        def forget(props: Row) -> Row | None:
            entries = entries_of(props)
            if not any(e.action == key for e in entries):
                return None
            kept = [replace(e, holds=e.holds - 1) if e.action == key else e for e in entries]
            return encode([e for e in kept if e.holds > 0], paused_of(props))

        self._row.update(forget)

    def paused(self, at: datetime) -> None:
        now = micros(at)

        def mark(props: Row) -> Row | None:
            return None if paused_of(props) >= now else {**props, "PausedAt": str(now)}

        self._row.update(mark)
