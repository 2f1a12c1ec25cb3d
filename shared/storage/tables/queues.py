"""The work-queue index (`ticketqueues` table): which tickets are in which queue, newest first.

The index lives outside the tickets' partitions, so it cannot share their transaction. The
protocol (README, "Work queues"):

- every entry names the ticket version that wrote it (`queue_row`); a change to version n writes
  the entries of every queue the ticket is in at n BEFORE the commit, in one batch (all of a
  ticket's entries of one status share a partition), and in that batch deletes its entries of
  version n-1 for the queues it stays in; AFTER the commit it deletes its version n-1 entries of
  the queues it left. A writer only ever deletes entries of the version it changed from, so it
  can never delete one a later change wrote;
- a reader shows an entry only when the ticket it reads (it reads the tickets it lists anyway) is
  in the queue now, and deletes an entry whose ticket left the queue at or after the entry's
  version (an entry of a later version is a change not committed yet, or never: it stays).

So a reader never shows a ticket in a queue it has left, and a ticket's entries for its current
queues exist from before its commit on: a crash before the commit leaves entries the reader
ignores, a crash after it entries the reader deletes; `rebuild` repairs anything else.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError

from shared.domain.models import Page, Ticket
from shared.domain.queues import Queue, queues_of
from shared.errors import ValidationFailed
from shared.storage.keys import (
    TICKET_ROW,
    owner_part,
    parse_queue_row,
    queue_cursor,
    queue_cursor_position,
    queue_partitions,
    queue_prefix,
    queue_row,
    team_part,
    ticket_id_of,
)
from shared.storage.tables.rows import REPLACE, Row, quote

log = logging.getLogger(__name__)
BATCH = 100  # entities in one entity-group transaction
ORPHAN_AGE = timedelta(minutes=10)  # far longer than a create's insert can take, retries included


def prefix_of(queue: Queue) -> str:
    if queue.owner is not None:
        return queue_prefix("o", owner_part(queue.owner))
    if queue.assigned_team is not None:
        return queue_prefix("t", team_part(queue.assigned_team))
    if queue.priority is not None:
        return queue_prefix("p", queue.priority.value)
    return queue_prefix("s", "")


def entries_of(ticket_id: int, owner: str, state: dict[str, Any], version: int) -> list[Row]:
    """The index entries of a ticket in `state` at `version`: one per queue, all in one partition."""
    [partition] = queue_partitions(str(state["status"]), owner)
    return [
        {
            "PartitionKey": partition,
            "RowKey": queue_row(prefix_of(queue), ticket_id, version),
            "Id": ticket_id,
            "Version": version,
        }
        for queue in queues_of(owner, state)
    ]


def _key(row: Row) -> tuple[str, str]:
    return str(row["PartitionKey"]), str(row["RowKey"])


def _queue_of(row: Row) -> tuple[str, str]:
    """The partition and the queue's part of the row key: the entry without its version."""
    return str(row["PartitionKey"]), str(row["RowKey"]).rsplit("|", 1)[0]


@dataclass
class Change:
    """What one commit does to the index: `enter` before it, `leave` after it."""

    enter: list[Row] = field(default_factory=list)
    replaced: list[Row] = field(default_factory=list)  # the previous version's entries of queues it stays in
    leave: list[Row] = field(default_factory=list)


def change_of(ticket: Ticket, before: dict[str, Any] | None, base: int) -> Change:
    """From `before` (the state at version `base`; None when unknown, as in entries written
    without states, whose old entries the reader then deletes) to `ticket`."""
    change = Change(enter=entries_of(ticket.id, ticket.user, ticket.state(), ticket.version))
    if before is None or "status" not in before:
        return change
    old = entries_of(ticket.id, ticket.user, before, base)
    staying = {_queue_of(row) for row in change.enter}
    for row in old:
        (change.replaced if _queue_of(row) in staying else change.leave).append(row)
    return change


class TableQueueIndex:
    def __init__(self, table: TableClient, pool: ThreadPoolExecutor) -> None:
        self._table = table
        self._pool = pool

    # ---- writes ----------------------------------------------------------------------------

    def enter(self, change: Change) -> None:
        """Before the commit: the new entries, and the removal of the ones they replace, in one
        batch. A replaced entry already gone (a reader or rebuild removed it) fails the batch:
        then the entries are written and the old ones deleted one by one."""
        operations: list[Any] = [("upsert", row, REPLACE) for row in change.enter]
        operations += [("delete", row) for row in change.replaced]
        try:
            self._table.submit_transaction(operations)
        except TableTransactionError as exc:
            if not change.replaced or getattr(exc, "error_code", None) != "ResourceNotFound":
                raise
            self._table.submit_transaction([("upsert", row, REPLACE) for row in change.enter])
            _delete_each(self._table, change.replaced)

    def leave(self, change: Change) -> None:
        """After the commit: delete the entries of the queues left. Best effort: an entry left
        behind is never shown (its ticket no longer matches) and the next reader deletes it."""
        if not change.leave:
            return
        try:
            _delete_batch(self._table, change.leave)
        except Exception:
            log.warning("queue index: entries of ticket %s left behind", change.leave[0]["Id"], exc_info=True)

    def discard(self, rows: Sequence[Row]) -> None:
        """Entries of a create that failed (best effort: readers skip them anyway)."""
        try:
            _delete_each(self._table, rows)
        except Exception:
            log.warning("queue index: entries of a failed create left behind", exc_info=True)

    # ---- reads -----------------------------------------------------------------------------

    def page(
        self, queue: Queue, limit: int, cursor: str | None, read: Callable[[list[int]], list[Ticket | None]]
    ) -> Page:
        """Newest first. Reads each of the queue's partitions from the cursor on (in parallel),
        merges them by ticket, and reads the tickets named until `limit` + 1 match (one more
        tells whether there is a next page). In steady state a page is one query per partition
        plus `limit` + 1 point reads, whatever the table's size and however rare the match."""
        after = None
        if cursor is not None:
            after = queue_cursor_position(queue.name, cursor)
            if after is None:
                raise ValidationFailed(
                    "The cursor is not one this list gave out.",
                    [{"loc": "cursor", "msg": "Use the next_cursor of the same list, unchanged."}],
                )
        prefix = prefix_of(queue)
        low = prefix + (after + "|~" if after else "")
        high = prefix + "~"
        streams = list(
            self._pool.map(
                lambda p: self._stream(p, low, high, limit + 2),
                queue_partitions(queue.status.value, queue.owner),
            )
        )
        candidates = _by_ticket(heapq.merge(*streams, key=lambda row: str(row["RowKey"])))
        found: list[Ticket] = []
        stale: list[Row] = []
        while len(found) <= limit:
            chunk = [group for _, group in zip(range(limit + 1 - len(found)), candidates, strict=False)]
            if not chunk:
                break
            tickets = read([ticket_id for ticket_id, _ in chunk])
            for (_, rows), ticket in zip(chunk, tickets, strict=True):
                if ticket is None:
                    continue  # a create not committed yet, or one that failed
                newest = max(int(row["Version"]) for row in rows)
                if queue.matches(ticket):
                    found.append(ticket)
                    stale += [r for r in rows if int(r["Version"]) < min(newest, ticket.version)]
                else:
                    stale += [r for r in rows if int(r["Version"]) <= ticket.version]
        if stale:  # one request each, in parallel; rare (a crash, a lost race, a left queue)
            list(self._pool.map(lambda row: _delete_each(self._table, [row]), stale))
        page = found[:limit]
        more = len(found) > limit
        return Page(results=page, next_cursor=queue_cursor(queue.name, page[-1].id) if more else None)

    def _stream(self, partition: str, low: str, high: str, per_page: int) -> Iterator[Row]:
        """The partition's entries in key order, the first page already fetched (so the
        partitions are read in parallel). A page of `limit` + 2 rows holds the `limit` + 1
        tickets a page reads and the row after them, which closes the last one's group."""
        query = f"PartitionKey eq {quote(partition)} and RowKey gt {quote(low)} and RowKey lt {quote(high)}"
        rows = iter(
            self._table.query_entities(
                query, select=["PartitionKey", "RowKey", "Id", "Version"], results_per_page=per_page
            )
        )
        first = next(rows, None)
        if first is None:
            return iter(())
        return _chain(first, rows)

    # ---- repair ----------------------------------------------------------------------------

    def rebuild(
        self,
        tickets: TableClient,
        read: Callable[[int], Ticket | None],
        to_ticket: Callable[[dict[str, Any]], Ticket],
        orphan_age: timedelta = ORPHAN_AGE,
    ) -> tuple[int, int]:
        """Make the index what the tickets say: (entries added, entries removed).

        Reads the index first, then every ticket. An entry of a version later than its ticket's
        (a change in flight) is kept; an entry whose ticket is missing is removed only if it is
        older than `orphan_age` (by the service's Timestamp) and the ticket is still missing when
        read again: a create writes its entries before its ticket, and one whose insert stalls
        (retried, slow) must not lose them to a rebuild running meanwhile."""
        columns = ["PartitionKey", "RowKey", "Id", "Version", "Timestamp"]
        existing = {_key(row): row for row in self._table.query_entities("", select=columns)}
        old = datetime.now(UTC) - orphan_age
        expected: dict[tuple[str, str], Row] = {}
        versions: dict[int, int] = {}
        for entity in tickets.query_entities(f"RowKey eq '{TICKET_ROW}'"):
            ticket = to_ticket(entity)
            versions[ticket.id] = ticket.version
            for row in entries_of(ticket.id, ticket.user, ticket.state(), ticket.version):
                expected[_key(row)] = row
        missing = [row for key, row in expected.items() if key not in existing]
        doomed: list[Row] = []
        orphans: list[Row] = []
        for key, row in existing.items():
            if key in expected:
                continue
            parsed = parse_queue_row(key[1])
            if parsed is None:
                doomed.append(row)
                continue
            _, ticket_id, version = parsed
            current = versions.get(ticket_id)
            if current is None:
                written = row.metadata["timestamp"]
                if written is not None and written < old:
                    orphans.append(row)
            elif version <= current:
                doomed.append(row)
        gone = {t for t in {int(r["Id"]) for r in orphans} if read(t) is None}
        doomed += [r for r in orphans if int(r["Id"]) in gone]
        self._write(missing, "upsert")
        self._write(doomed, "delete")
        return len(missing), len(doomed)

    def _write(self, rows: list[Row], kind: str) -> None:
        groups: dict[str, list[Row]] = {}
        for row in rows:
            groups.setdefault(str(row["PartitionKey"]), []).append(row)
        batches = [group[i : i + BATCH] for group in groups.values() for i in range(0, len(group), BATCH)]

        def submit(batch: list[Row]) -> None:
            if kind == "upsert":
                self._table.submit_transaction([("upsert", row, REPLACE) for row in batch])
            else:
                _delete_batch(self._table, batch)

        list(self._pool.map(submit, batches))


def _delete_each(table: TableClient, rows: Iterable[Row]) -> None:
    for row in rows:
        try:
            table.delete_entity(*_key(row))
        except ResourceNotFoundError:
            pass


def _delete_batch(table: TableClient, rows: Sequence[Row]) -> None:
    """One transaction (rows of one partition); when one of them is gone already, one by one."""
    try:
        table.submit_transaction([("delete", row) for row in rows])
    except TableTransactionError as exc:
        if getattr(exc, "error_code", None) != "ResourceNotFound":
            raise
        _delete_each(table, rows)


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def _by_ticket(rows: Iterator[Row]) -> Iterator[tuple[int, list[Row]]]:
    """Consecutive entries of one ticket (its versions) grouped; rows sort by ticket first."""
    current: int | None = None
    group: list[Row] = []
    for row in rows:
        ticket_id = ticket_id_of(str(row["RowKey"]).rsplit("|", 2)[1])
        if ticket_id != current and group:
            assert current is not None
            yield current, group
            group = []
        current = ticket_id
        group.append(row)
    if group:
        assert current is not None
        yield current, group
