"""The due index (DueIndex) in the due table: one partition per minute of due time
(shared/domain/due.py BUCKET_FORMAT, digits that sort as time does), a row per item keyed by its id;
the sweeper's cursor in a row of its own, under a partition key no bucket can take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, TableClient, UpdateMode

from shared.domain.due import DueItem, DueKind, bucket, item_id
from shared.storage.tables.rows import Row

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_PARTITION, CURSOR_ROW = "cursor", "sweep"  # letters sort after every bucket's digits


def _entity(item: DueItem) -> Row:
    row: Row = {
        "PartitionKey": item.bucket,
        "RowKey": item.id,
        "Kind": item.kind.value,
        "TicketId": item.ticket_id,
        "Seq": item.seq,
        "DueAt": item.due_at.astimezone(UTC),
        "DueUs": (_micros(item.due_at), EdmType.INT64),  # what the query filters on, exactly
        "Sends": item.sends,
    }
    if item.enqueued_at is not None:
        row["EnqueuedUs"] = (_micros(item.enqueued_at), EdmType.INT64)
    return row


def _micros(at: datetime) -> int:
    """Microseconds since the epoch, stored as Int64: a filter on a DateTime property compares at
    the precision the service keeps (Azurite: milliseconds); this one is exact."""
    return (at - EPOCH) // timedelta(microseconds=1)


def _at(value: Any) -> datetime:
    return EPOCH + timedelta(microseconds=int(getattr(value, "value", value)))


def _item(entity: Any) -> DueItem:
    enqueued = entity.get("EnqueuedUs")
    return DueItem(
        kind=DueKind(entity["Kind"]),
        ticket_id=int(entity["TicketId"]),
        seq=int(entity["Seq"]),
        due_at=_at(entity["DueUs"]),
        enqueued_at=_at(enqueued) if enqueued is not None else None,
        sends=int(entity.get("Sends") or 0),
    )


class TableDueIndex:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def add(self, item: DueItem) -> None:
        """One insert; a row already there is this item written before (a retry) and is kept, so
        a retry never forgets that its message was sent."""
        try:
            self._table.create_entity(_entity(item))
        except ResourceExistsError:
            pass

    def due(self, since: datetime, now: datetime, limit: int) -> list[DueItem]:
        """One query over the partitions from `since`'s minute to `now`'s, filtered on the due time
        by the service; Table Storage returns rows in key order, so the earliest minute first. It
        may split a page at a partition boundary: read on until `limit` rows or the end."""
        query = f"PartitionKey ge @first and PartitionKey le @last and DueUs le {_micros(now)}L"
        params = {"first": bucket(since), "last": bucket(now)}
        found: list[DueItem] = []
        for entity in self._table.query_entities(query, parameters=params, results_per_page=limit):
            found.append(_item(entity))
            if len(found) == limit:
                break
        return found

    def mark_sent(self, item: DueItem, at: datetime) -> None:
        """A merge that needs the row (update sends If-Match: *, unlike upsert): an item removed
        meanwhile is not brought back."""
        update = {
            "PartitionKey": item.bucket,
            "RowKey": item.id,
            "EnqueuedUs": (_micros(at), EdmType.INT64),
            "Sends": item.sends + 1,
        }
        try:
            self._table.update_entity(
                update, mode=UpdateMode.MERGE, match_condition=MatchConditions.Unconditionally
            )
        except ResourceNotFoundError:
            pass

    def remove(self, kind: DueKind, ticket_id: int, seq: int, due_at: datetime) -> None:
        self._table.delete_entity(bucket(due_at), item_id(kind, ticket_id, seq))  # absent: no error

    def cursor(self) -> datetime | None:
        try:
            entity = self._table.get_entity(CURSOR_PARTITION, CURSOR_ROW)
        except ResourceNotFoundError:
            return None
        return _at(entity["AtUs"])

    def set_cursor(self, at: datetime) -> None:
        row = {"PartitionKey": CURSOR_PARTITION, "RowKey": CURSOR_ROW, "AtUs": (_micros(at), EdmType.INT64)}
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)
