"""In-app notifications (NotificationStore) in the notifications table: a partition per recipient
(`owner_key`) and one for the staff-wide notices, rows newest first (shared/storage/keys.py)."""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.models import Notification, Page
from shared.ports import MAX_OWNER_KEY
from shared.storage.keys import notification_partition, notification_row
from shared.storage.tables.rows import Row, quote, stored_json


def notification_keys(notification: Notification) -> tuple[str, str]:
    """(PartitionKey, RowKey); ValueError for a recipient whose id cannot key a partition."""
    partition = notification_partition(notification.user)
    if len(partition) > MAX_OWNER_KEY:
        raise ValueError(f"a recipient id may take at most {MAX_OWNER_KEY} characters once percent-encoded")
    return partition, notification_row(notification.created_at, notification.id)


def _entity(notification: Notification) -> Row:
    """The title and message raw in properties of their own (at most 400 and 8,000 UTF-16 units as
    the model bounds them), the rest as JSON in Data (links are at most 5 x 1,000 ASCII characters),
    so every notification fits whole."""
    partition, row = notification_keys(notification)
    return {
        "PartitionKey": partition,
        "RowKey": row,
        "Title": notification.title,
        "Message": notification.message,
        "Read": notification.read,
        "Data": stored_json(notification.model_dump(mode="json", exclude={"title", "message", "read"})),
    }


def _to_notification(entity: Any) -> Notification:
    data = json.loads(entity["Data"])
    return Notification.model_validate(
        {**data, "title": entity["Title"], "message": entity["Message"], "read": entity.get("Read", False)}
    )


class TableNotificationStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def add(self, notification: Notification) -> None:
        """One insert; a row already there is this notification written before (a retry)."""
        try:
            self._table.create_entity(_entity(notification))
        except ResourceExistsError:
            pass

    def list(self, user: str | None, limit: int, cursor: str | None) -> Page:
        """One query of `limit + 1` rows: the extra one says whether another page follows."""
        query = f"PartitionKey eq {quote(notification_partition(user))}"
        if cursor:
            query += f" and RowKey gt {quote(cursor)}"
        found: list[Notification] = []
        for entity in self._table.query_entities(query, results_per_page=limit + 1):
            if len(found) == limit:
                last = found[-1]
                return Page(results=found, next_cursor=notification_row(last.created_at, last.id))
            found.append(_to_notification(entity))
        return Page(results=found, next_cursor=None)

    def mark_read(self, user: str, key: str) -> bool:
        """One merge of `Read`, on the row only if it exists (If-Match: *)."""
        partition = notification_partition(user)
        try:
            self._table.update_entity(
                {"PartitionKey": partition, "RowKey": key, "Read": True}, mode=UpdateMode.MERGE
            )
        except ResourceNotFoundError:
            return False
        return True

    def mark_all_read(self, user: str, limit: int) -> int:
        """One query of the newest `limit` rows, then one entity-group transaction merging `Read`
        into the unread ones (a batch holds 100 operations, so `limit` is at most 100)."""
        if not 1 <= limit <= 100:
            raise ValueError("mark_all_read takes 1 to 100 notifications")
        partition = notification_partition(user)
        rows = self._table.query_entities(
            f"PartitionKey eq {quote(partition)}", select=["RowKey", "Read"], results_per_page=limit
        )
        unread = [row["RowKey"] for _, row in zip(range(limit), rows, strict=False) if not row.get("Read")]
        if unread:
            self._table.submit_transaction(
                [
                    (
                        "update",
                        {"PartitionKey": partition, "RowKey": key, "Read": True},
                        {"mode": UpdateMode.MERGE},
                    )
                    for key in unread
                ]
            )
        return len(unread)
