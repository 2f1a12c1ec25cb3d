"""The due index (DueIndex) in the due table: one partition per minute of due time
(shared/domain/due.py BUCKET_FORMAT, digits that sort as time does), a row per item keyed by its id;
the sweeper's cursor in a row of its own, under a partition key no bucket can take."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.due import DueItem, DueKind, bucket, item_id
from shared.storage.tables.rows import Row

CURSOR_PARTITION, CURSOR_ROW = "cursor", "sweep"  # letters sort after every bucket's digits


def _entity(item: DueItem) -> Row:
    row: Row = {
        "PartitionKey": item.bucket,
        "RowKey": item.id,
        "Kind": item.kind.value,
        "TicketId": item.ticket_id,
        "Seq": item.seq,
        "DueAt": item.due_at.astimezone(UTC),
        "Sends": item.sends,
    }
    if item.enqueued_at is not None:
        row["EnqueuedAt"] = item.enqueued_at.astimezone(UTC)
    return row


def _utc(value: Any) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), UTC)


def _item(entity: Any) -> DueItem:
    enqueued = entity.get("EnqueuedAt")
    return DueItem(
        kind=DueKind(entity["Kind"]),
        ticket_id=int(entity["TicketId"]),
        seq=int(entity["Seq"]),
        due_at=_utc(entity["DueAt"]),
        enqueued_at=_utc(enqueued) if enqueued is not None else None,
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
        query = "PartitionKey ge @first and PartitionKey le @last and DueAt le @now"
        params = {"first": bucket(since), "last": bucket(now), "now": now.astimezone(UTC)}
        found: list[DueItem] = []
        for entity in self._table.query_entities(query, parameters=params, results_per_page=limit):
            found.append(_item(entity))
            if len(found) == limit:
                break
        return found

    def mark_sent(self, item: DueItem, at: datetime) -> None:
        """A merge that needs the row (If-Match *): an item removed meanwhile is not brought back."""
        update = {
            "PartitionKey": item.bucket,
            "RowKey": item.id,
            "EnqueuedAt": at.astimezone(UTC),
            "Sends": item.sends + 1,
        }
        try:
            self._table.update_entity(
                update, mode=UpdateMode.MERGE, match_condition=MatchConditions.IfPresent
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
        return _utc(entity["At"])

    def set_cursor(self, at: datetime) -> None:
        row = {"PartitionKey": CURSOR_PARTITION, "RowKey": CURSOR_ROW, "At": at.astimezone(UTC)}
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)
