"""The idempotency ledger (RequestLedger) in the tickets table: one row per request in the partition
of the ticket it changes, so that TicketRepository.save commits the COMPLETED record in the same
entity-group transaction as the ticket change."""

from __future__ import annotations

from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.models import RequestRecord
from shared.errors import ConcurrencyConflict
from shared.storage.keys import request_row, ticket_key
from shared.storage.tables.rows import Row


def record_entity(scope: int, record: RequestRecord) -> Row:
    return {
        "PartitionKey": ticket_key(scope),
        "RowKey": request_row(record.request_id),
        "Data": record.model_dump_json(),
    }


def to_record(entity: Any) -> RequestRecord:
    record = RequestRecord.model_validate_json(entity["Data"])
    record.etag = entity.metadata["etag"]
    return record


def _unchanged(etag: str | None) -> dict[str, Any]:
    """Only if the row is still the one read (or written) with `etag`."""
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


class TableRequestLedger:
    def __init__(self, tickets: TableClient) -> None:
        self._tickets = tickets

    def get(self, scope: int, request_id: str) -> RequestRecord | None:
        try:
            return to_record(self._tickets.get_entity(ticket_key(scope), request_row(request_id)))
        except ResourceNotFoundError:
            return None

    def claim(self, scope: int, record: RequestRecord, expired: RequestRecord | None) -> str:
        entity = record_entity(scope, record)
        try:
            if expired is None:
                written = self._tickets.create_entity(entity)
            else:  # a dead worker's: ours only if nobody took it over or completed it first
                written = self._tickets.update_entity(
                    entity, mode=UpdateMode.REPLACE, **_unchanged(expired.etag)
                )
            return str(written["etag"])
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(f"request {record.request_id} is held by another worker") from exc

    def complete(self, scope: int, record: RequestRecord, etag: str) -> None:
        try:
            self._tickets.update_entity(
                record_entity(scope, record), mode=UpdateMode.REPLACE, **_unchanged(etag)
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(f"request {record.request_id} is no longer ours") from exc

    def release(self, scope: int, request_id: str, etag: str) -> None:
        try:
            self._tickets.delete_entity(ticket_key(scope), request_row(request_id), **_unchanged(etag))
        except (ResourceNotFoundError, ResourceModifiedError):
            pass  # already gone, or no longer ours
