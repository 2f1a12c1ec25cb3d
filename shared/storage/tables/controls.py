"""The agent controls and their audit trail (ControlsRepository) in the controls table."""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError

from shared.domain.models import AgentControls
from shared.errors import ConcurrencyConflict
from shared.storage.tables.rows import REPLACE, stored_json

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
            "Data": stored_json(controls.model_dump(mode="json")),
        }
        record = {
            "PartitionKey": CONTROLS_PARTITION,
            "RowKey": audit_row(controls.version),
            "Data": stored_json(audit),  # three reasons at most (its own, before, after): < 20K units
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
