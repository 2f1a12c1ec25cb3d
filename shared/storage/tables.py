"""Azure Table Storage adapters of the storage ports (layout in shared/storage/keys.py)."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.domain.models import AgentControls, HistoryEntry, Page, RequestRecord, Status, Ticket
from shared.errors import ConcurrencyConflict
from shared.ports import QuotaExceeded, WindowLimit, WindowUsage, new_entry
from shared.storage.keys import (
    CREATE_MARKERS,
    TICKET_ROW,
    create_marker_row,
    history_row,
    owner_key,
    request_row,
    ticket_key,
)
from shared.storage.sizes import AGENT_SUMMARY_UNITS, TABLE_STRING_UNITS, json_units, storable_json

ID_BLOCK_SIZE = 50
CREATE_COUNT_ATTEMPTS = 20
REPLACE = {"mode": UpdateMode.REPLACE}


Row = dict[str, Any]


class OptimisticRow:
    """One counter-like row updated with ETag conditions, remembering the last version
    it saw so an uncontended update is a single request.

    `change` gets the current properties ({} when absent) and returns the new ones, or
    None to leave the row as it is. A stale cached copy makes a write fail on the ETag,
    and the row is read again. A decline on the cached copy is final only where values
    never go back (`trust_cached_decline`, e.g. an id counter); where they can (a cap
    slot given back), a decline is confirmed on a fresh read.
    """

    def __init__(
        self,
        table: TableClient,
        partition: str,
        row: str,
        retries: int = 60,
        trust_cached_decline: bool = True,
    ) -> None:
        self._table, self._keys, self._retries = table, (partition, row), retries
        self._trust_cached_decline = trust_cached_decline
        self._seen: tuple[Row, str | None] | None = None
        self._lock = threading.Lock()

    def update(self, change: Callable[[Row], Row | None]) -> tuple[Row, Row | None]:
        """The properties `change` saw last, and what it wrote (None: it declined)."""
        for attempt in range(self._retries):
            with self._lock:
                seen, cached = self._seen, self._seen is not None
            if seen is None:
                seen = self._read()
            props, etag = seen
            new = change(dict(props))
            if new is None:
                if cached and not self._trust_cached_decline:
                    with self._lock:
                        self._seen = None
                    continue
                with self._lock:
                    self._seen = seen
                return props, None
            entity = {"PartitionKey": self._keys[0], "RowKey": self._keys[1], **new}
            try:
                if etag is None:
                    meta = self._table.create_entity(entity)
                else:
                    meta = self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                with self._lock:
                    self._seen = None
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            with self._lock:
                self._seen = (new, meta["etag"])
            return props, new
        raise ConcurrencyConflict(f"row {self._keys} stayed contended for {self._retries} attempts")

    def read(self) -> Row:
        return self._read()[0]

    def _read(self) -> tuple[Row, str | None]:
        try:
            entity = self._table.get_entity(*self._keys)
        except ResourceNotFoundError:
            return {}, None
        props = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
        return props, entity.metadata["etag"]


class TableIdAllocator:
    """Hands out ids from blocks claimed on one ETag-guarded counter row.

    One conditional write claims `block_size` ids for this process, so ids stay unique
    across instances at ~1/block_size round trips per id. Ids of a crashed instance's
    unused block are simply skipped.
    """

    def __init__(
        self, counters: TableClient, name: str = "ticket-id", block_size: int = ID_BLOCK_SIZE
    ) -> None:
        self._row = OptimisticRow(counters, "ids", name)
        self._block_size = block_size
        self._lock = threading.Lock()
        self._next = self._end = 0

    def next_id(self) -> int:
        with self._lock:
            if self._next >= self._end:
                _, claimed = self._row.update(lambda row: {"Next": row.get("Next", 1) + self._block_size})
                assert claimed is not None
                self._end = int(claimed["Next"])
                self._next = self._end - self._block_size
            self._next += 1
            return self._next - 1


def _ticket_entity(ticket: Ticket) -> dict[str, Any]:
    """The ticket row. Each part that can grow has a string property of its own, so each fits
    in one (32K UTF-16 units; see "Stored sizes" in shared/domain/models.py): the description,
    raw (10,000 characters take at most 20,000 units; as JSON up to 60,000), the resolution
    (feedback text), and the agent's summary, shrunk to AGENT_SUMMARY_UNITS if it ever came
    out larger. Data keeps the rest, a third of a property at most, with room for new fields."""
    entity = {
        "PartitionKey": ticket_key(ticket.id),
        "RowKey": TICKET_ROW,
        "Owner": ticket.user,
        "Status": ticket.status.value,
        "Version": ticket.version,
        "Description": ticket.description,
        "Data": _json(ticket.model_dump(mode="json", exclude={"description", "agent", "resolution"})),
    }
    if ticket.agent is not None:
        entity["Agent"] = _json(storable_json(ticket.agent, AGENT_SUMMARY_UNITS))
    if ticket.resolution is not None:
        entity["Resolution"] = _json(ticket.resolution.model_dump(mode="json"))
    return entity


def _json(value: Any) -> str:
    """Compact JSON as stored: non-ASCII kept as is (an escaped emoji would take 12 units, not 2)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _to_ticket(entity: dict[str, Any]) -> Ticket:
    data = json.loads(entity["Data"])
    # Rows written before the description, agent and resolution had properties of their own hold them in Data.
    data["description"] = entity.get("Description", data.get("description", ""))
    for prop, field in (("Agent", "agent"), ("Resolution", "resolution")):
        if prop in entity:
            data[field] = json.loads(entity[prop])
    ticket = Ticket.model_validate(data)
    ticket.version = int(entity["Version"])
    return ticket


def _entry_entity(entry: HistoryEntry) -> dict[str, Any]:
    """A history entry row. The states before and after the change each hold a whole resolution
    (feedback text included), so each has a property of its own; the free text in Data (the
    reasoning and the parameters an agent or a person supplied) is shortened if Data would not
    fit, so that a change can always be committed."""
    data = entry.model_dump(mode="json", exclude={"before_state", "after_state"})
    fixed = json_units({**data, "agent_reasoning": "", "action_params": {}})
    free = storable_json(
        {"agent_reasoning": data["agent_reasoning"], "action_params": data["action_params"]},
        TABLE_STRING_UNITS - fixed - 64,
    )
    return {
        "PartitionKey": ticket_key(entry.ticket_id),
        "RowKey": history_row(entry.seq),
        "ActionType": entry.action_type.value,
        "Before": _json(entry.before_state),
        "After": _json(entry.after_state),
        "Data": _json({**data, "agent_reasoning": "", "action_params": {}, **free}),
    }


def _to_entry(entity: dict[str, Any]) -> HistoryEntry:
    data = json.loads(entity["Data"])
    if "Before" in entity:  # rows written before the states had properties of their own hold them in Data
        data["before_state"], data["after_state"] = json.loads(entity["Before"]), json.loads(entity["After"])
    return HistoryEntry.model_validate(data)


def _request_entity(ticket_id: int, record: RequestRecord) -> dict[str, Any]:
    return {
        "PartitionKey": ticket_key(ticket_id),
        "RowKey": request_row(record.request_id),
        "Data": record.model_dump_json(),
    }


def _to_request(entity: Any) -> RequestRecord:
    record = RequestRecord.model_validate_json(entity["Data"])
    record.etag = entity.metadata["etag"]
    return record


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class TableTicketRepository:
    def __init__(self, tickets: TableClient, owners: TableClient, ids: TableIdAllocator) -> None:
        self._tickets = tickets
        self._owners = owners
        self._ids = ids
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ticket-io")
        self._lock = threading.Lock()
        self._creates_seen: dict[tuple[str, int], set[int]] = {}

    def next_id(self) -> int:
        return self._ids.next_id()

    def add(self, ticket: Ticket, limit: WindowLimit | None = None) -> WindowUsage | None:
        """Without a limit: the owner-index row and the ticket row in parallel (2 round trips, ~1
        in time). With one: the index row counted in the owner's window (one transaction), then
        the ticket row (2 round trips).

        No failure leaves a ticket its owner cannot list: an index row whose ticket insert
        failed points at nothing, and readers skip it; a ticket whose index write failed is
        deleted again before the error is raised (ids are never reused, so nobody holds it).
        """
        index = {"PartitionKey": owner_key(ticket.user), "RowKey": ticket_key(ticket.id), "Id": ticket.id}
        if limit is not None:
            usage = self._count_create(index, ticket, limit)
            self._insert_ticket(ticket)
            return usage
        pending = self._pool.submit(self._owners.upsert_entity, index)
        try:
            self._insert_ticket(ticket)
        except BaseException:
            pending.exception()  # settle the index write either way; its row is harmless
            raise
        try:
            pending.result()
        except BaseException:
            self._tickets.delete_entity(ticket_key(ticket.id), TICKET_ROW)
            raise
        return None

    def _insert_ticket(self, ticket: Ticket) -> None:
        try:
            self._tickets.create_entity(_ticket_entity(ticket))
        except ResourceExistsError as exc:
            raise ConcurrencyConflict(f"ticket {ticket.id} exists") from exc

    def _count_create(self, index: Row, ticket: Ticket, limit: WindowLimit) -> WindowUsage:
        """Write the index row together with a marker taking one of the `limit.amount` places of
        the owner's window: one entity-group transaction in the owner's partition.

        A marker is inserted, never overwritten, so two creates that pick the same place cannot
        both commit (Azurite honours the insert inside a batch, unlike If-Match), and there are
        only `amount` places: the count is exact. Places are picked at random among those not
        known to be taken, so concurrent creates rarely collide; a loser reads the window's
        markers and picks again, and with every place taken nothing is written. The places this
        instance knows are taken save the read: they can only be fewer than the truth (a
        window only fills up), which costs one failed insert, never a wrong answer; and a window
        it knows is full is refused without a request.
        """
        owner, window = str(index["PartitionKey"]), limit.window(ticket.created_at)
        with self._lock:
            taken = set(self._creates_seen.get((owner, window), ()))
        for _ in range(CREATE_COUNT_ATTEMPTS):
            if len(taken) >= limit.amount:
                raise QuotaExceeded(limit.usage(window, limit.amount + 1))
            place = random.randint(1, limit.amount)
            while place in taken:
                place = random.randint(1, limit.amount)
            marker = {"PartitionKey": owner, "RowKey": create_marker_row(window, place)}
            try:
                self._owners.submit_transaction([("upsert", index, REPLACE), ("create", marker)])
            except TableTransactionError as exc:
                if getattr(exc, "error_code", None) != "EntityAlreadyExists":
                    raise
                taken = self._taken_places(owner, window)
                continue
            taken.add(place)
            with self._lock:
                self._creates_seen = {k: v for k, v in self._creates_seen.items() if k[1] >= window}
                self._creates_seen[(owner, window)] = taken | self._creates_seen.get((owner, window), set())
            return limit.usage(window, len(taken))
        raise ConcurrencyConflict(f"the creates of {owner} stayed contended")

    def _taken_places(self, owner: str, window: int) -> set[int]:
        low, high = create_marker_row(window, 0), create_marker_row(window + 1, 0)
        query = f"PartitionKey eq {_quote(owner)} and RowKey gt {_quote(low)} and RowKey lt {_quote(high)}"
        rows = self._owners.query_entities(query, select=["RowKey"])
        return {int(row["RowKey"].rsplit("-", 1)[1]) for row in rows}

    def get(self, ticket_id: int) -> Ticket | None:
        try:
            return _to_ticket(self._tickets.get_entity(ticket_key(ticket_id), TICKET_ROW))
        except ResourceNotFoundError:
            return None

    def save(
        self, ticket: Ticket, entries: Sequence[HistoryEntry] = (), request: RequestRecord | None = None
    ) -> None:
        # Azurite ignores If-Match inside a batch, so the guard is the insert of this version's
        # history entry: a concurrent writer that committed this version first makes the
        # insert, and with it the whole transaction, fail.
        new_entry(ticket, entries)
        operations: list[Any] = [("upsert", _ticket_entity(ticket), {"mode": UpdateMode.REPLACE})]
        operations += [
            ("create", _entry_entity(e)) if e.seq == ticket.version else ("upsert", _entry_entity(e), REPLACE)
            for e in entries
        ]
        if request is not None:
            operations.append(("upsert", _request_entity(ticket.id, request), REPLACE))
        try:
            self._tickets.submit_transaction(operations)
        except TableTransactionError as exc:
            if getattr(exc, "error_code", None) != "EntityAlreadyExists":
                raise
            raise ConcurrencyConflict(f"ticket {ticket.id} changed concurrently") from exc

    def get_with_request(self, ticket_id: int, request_id: str) -> tuple[Ticket | None, RequestRecord | None]:
        key, row = ticket_key(ticket_id), request_row(request_id)
        query = f"PartitionKey eq {_quote(key)} and (RowKey eq '{TICKET_ROW}' or RowKey eq {_quote(row)})"
        ticket = record = None
        for entity in self._tickets.query_entities(query):
            if entity["RowKey"] == TICKET_ROW:
                ticket = _to_ticket(entity)
            else:
                record = _to_request(entity)
        return ticket, record

    def claim_request(self, ticket_id: int, record: RequestRecord, expired: RequestRecord | None) -> str:
        entity = _request_entity(ticket_id, record)
        try:
            if expired is None:
                return str(self._tickets.create_entity(entity)["etag"])
            else:
                return str(
                    self._tickets.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=expired.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )["etag"]
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(f"request {record.request_id} is held by another worker") from exc

    def release_request(self, ticket_id: int, request_id: str, etag: str) -> None:
        try:
            self._tickets.delete_entity(
                ticket_key(ticket_id),
                request_row(request_id),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass  # already gone, or no longer ours

    def complete_request(self, ticket_id: int, record: RequestRecord, etag: str) -> None:
        try:
            self._tickets.update_entity(
                _request_entity(ticket_id, record),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(f"request {record.request_id} is no longer ours") from exc

    def list_for_owner(self, owner: str, status: Status | None, limit: int, cursor: str | None) -> Page:
        query = f"PartitionKey eq {_quote(owner_key(owner))} and RowKey lt {_quote(CREATE_MARKERS)}"
        if cursor:
            query += f" and RowKey gt {_quote(cursor)}"
        rows = self._owners.query_entities(query, select=["RowKey", "Id"], results_per_page=limit + 1)
        return self._collect(self._read_tickets(rows, limit + 1, owner), status, limit)

    def list_all(self, status: Status | None, limit: int, cursor: str | None) -> Page:
        query = f"RowKey eq '{TICKET_ROW}'"
        if status is not None:
            query += f" and Status eq {_quote(status.value)}"
        if cursor:
            query += f" and PartitionKey gt {_quote(cursor)}"
        rows = self._tickets.query_entities(query, results_per_page=limit + 1)
        return self._collect((_to_ticket(r) for r in rows), status, limit)

    def _read_tickets(self, index_rows: Iterator[Any], chunk: int, owner: str) -> Iterator[Ticket]:
        """Point-read the tickets an owner index page names, in parallel, keeping order.

        The index is a secondary view: a row whose ticket does not exist (its insert failed)
        or is not the owner's (a stale or forged row) is skipped, never shown."""
        while True:
            ids = [int(row["Id"]) for _, row in zip(range(chunk), index_rows, strict=False)]
            if not ids:
                return
            for ticket in self._pool.map(self.get, ids):
                if ticket is not None and ticket.user == owner:
                    yield ticket

    @staticmethod
    def _collect(tickets: Iterator[Ticket], status: Status | None, limit: int) -> Page:
        page: list[Ticket] = []
        for ticket in tickets:
            if status is not None and ticket.status != status:
                continue
            if len(page) == limit:
                return Page(results=page, next_cursor=ticket_key(page[-1].id))
            page.append(ticket)
        return Page(results=page, next_cursor=None)

    def history(self, ticket_id: int, limit: int, cursor: str | None) -> Page:
        key = ticket_key(ticket_id)
        low = cursor or "h"
        query = f"PartitionKey eq {_quote(key)} and RowKey gt {_quote(low)} and RowKey lt 'i'"
        entries: list[HistoryEntry] = []
        for row in self._tickets.query_entities(query, results_per_page=limit + 1):
            if len(entries) == limit:
                return Page(results=entries, next_cursor=history_row(entries[-1].seq))
            entries.append(_to_entry(row))
        return Page(results=entries, next_cursor=None)

    def get_entry(self, ticket_id: int, seq: int) -> HistoryEntry | None:
        try:
            row = self._tickets.get_entity(ticket_key(ticket_id), history_row(seq))
        except ResourceNotFoundError:
            return None
        return _to_entry(row)


def _share(total: int, shards: int, index: int) -> int:
    return total // shards + (1 if index < total % shards else 0)


def _tag(holder: str) -> str:
    return hashlib.sha256(holder.encode()).hexdigest()[:20]


class TableActionCaps:
    """Hourly and daily caps split into shard rows whose budgets sum to the caps.

    Each shard row holds its day count, its per-hour counts and the holders of its slots,
    and is updated under an ETag, so no shard overshoots its budget and the sum never
    exceeds a cap, with any number of instances. A holder tries the shards in an order
    drawn from its own id (spreading the writers, and leading a retry back to the slot its
    earlier attempt took); holding a slot already takes nothing more. Releasing removes the
    holder and its counts. Holder lists keep the newest MAX_HOLDERS entries of a day, far
    more than any request stays retried.
    """

    MAX_HOLDERS = 800

    def __init__(self, counters: TableClient, per_hour: int, per_day: int, shards: int = 4) -> None:
        self._table, self._per_hour, self._per_day, self._shards = counters, per_hour, per_day, shards
        self._rows: dict[tuple[str, int], OptimisticRow] = {}
        self._lock = threading.Lock()

    def _row(self, day: str, shard: int) -> OptimisticRow:
        with self._lock:
            if (day, shard) not in self._rows:
                self._rows = {k: v for k, v in self._rows.items() if k[0] == day}
                self._rows[(day, shard)] = OptimisticRow(
                    self._table, f"caps-{day}", f"shard-{shard}", trust_cached_decline=False
                )
            return self._rows[(day, shard)]

    def _order(self, holder: str) -> list[int]:
        return sorted(range(self._shards), key=lambda s: hashlib.sha256(f"{holder}/{s}".encode()).digest())

    def try_acquire(self, now: datetime, holder: str) -> str | None:
        day, hour, tag = now.strftime("%Y%m%d"), f"H{now:%H}", _tag(holder)
        reason = "daily_cap_reached"
        for shard in self._order(holder):
            day_budget = _share(self._per_day, self._shards, shard)
            hour_budget = _share(self._per_hour, self._shards, shard)
            held = False

            def take(props: Row, day_budget: int = day_budget, hour_budget: int = hour_budget) -> Row | None:
                nonlocal held
                holders = _holders(props)
                held = any(h.partition(":")[0] == tag for h in holders)
                if held or props.get("Day", 0) >= day_budget or props.get(hour, 0) >= hour_budget:
                    return None
                holders = [*holders, f"{tag}:{hour}"][-self.MAX_HOLDERS :]
                return {
                    **props,
                    "Day": props.get("Day", 0) + 1,
                    hour: props.get(hour, 0) + 1,
                    "Holders": " ".join(holders),
                }

            seen, taken = self._row(day, shard).update(take)
            if taken is not None or held:
                return None
            if seen.get("Day", 0) < day_budget:
                reason = "hourly_cap_reached"
        return reason

    def release(self, taken_at: datetime, holder: str) -> None:
        day, tag = taken_at.strftime("%Y%m%d"), _tag(holder)
        for shard in self._order(holder):

            def give(props: Row) -> Row | None:
                holders = _holders(props)
                mine = next((h for h in holders if h.partition(":")[0] == tag), None)
                if mine is None:
                    return None
                hour = mine.partition(":")[2]
                holders.remove(mine)
                return {
                    **props,
                    "Day": max(0, props.get("Day", 0) - 1),
                    hour: max(0, props.get(hour, 0) - 1),
                    "Holders": " ".join(holders),
                }

            if self._row(day, shard).update(give)[1] is not None:
                return

    def usage(self, now: datetime) -> tuple[int, int]:
        day, hour = now.strftime("%Y%m%d"), f"H{now:%H}"
        rows = [self._row(day, shard).read() for shard in range(self._shards)]
        return sum(r.get(hour, 0) for r in rows), sum(r.get("Day", 0) for r in rows)


def _holders(props: Row) -> list[str]:
    return str(props.get("Holders", "")).split()


CONTROLS_PARTITION = "agent"
CONTROLS_ROW = "current"
_AUDIT_TOP = 10**10


def audit_row(version: int) -> str:
    """The audit row of the change that produced `version`; keys count down, newest first."""
    return f"v{_AUDIT_TOP - version:010d}"


class TableControlsRepository:
    """The agent controls row and, in the same partition, one audit row per change.

    A change commits the controls row and its audit row as one entity-group transaction. The
    audit row is keyed by the version the change produces and inserted, never overwritten, so
    a concurrent change that committed that version first makes the whole batch fail: the
    guard works on Azure and on Azurite, which ignores If-Match inside batches. (Audit rows of
    releases before versioning live in partition `agent-audit`.)
    """

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self) -> AgentControls | None:
        try:
            entity = self._table.get_entity(CONTROLS_PARTITION, CONTROLS_ROW)
        except ResourceNotFoundError:
            return None
        controls = AgentControls.model_validate_json(entity["Data"])
        controls.version = int(entity.get("Version", 0))
        return controls

    def put(self, controls: AgentControls, audit: dict[str, Any]) -> None:
        current = {
            "PartitionKey": CONTROLS_PARTITION,
            "RowKey": CONTROLS_ROW,
            "Version": controls.version,
            "Data": _json(controls.model_dump(mode="json")),
        }
        record = {
            "PartitionKey": CONTROLS_PARTITION,
            "RowKey": audit_row(controls.version),
            "Data": _json(audit),  # three reasons at most (its own, before, after): < 20K units
        }
        try:
            self._table.submit_transaction([("upsert", current, REPLACE), ("create", record)])
        except TableTransactionError as exc:
            if getattr(exc, "error_code", None) != "EntityAlreadyExists":
                raise
            raise ConcurrencyConflict(f"controls version {controls.version} was committed first") from exc

    def audit_trail(self, limit: int) -> list[dict[str, Any]]:
        query = f"PartitionKey eq '{CONTROLS_PARTITION}' and RowKey gt 'v' and RowKey lt 'w'"
        rows = self._table.query_entities(query, results_per_page=max(1, min(limit, 1000)))
        return [json.loads(row["Data"]) for _, row in zip(range(limit), rows, strict=False)]
