"""The optimistic-row primitive: one row read and rewritten under its ETag.

`write_row` is the conditional write itself; `OptimisticRow` wraps it in the read, change, write
and retry loop of one row (the id allocator, the caps). The `limits` backend keeps its own loop
around `write_row` (shared/storage/ratelimit.py says why).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.errors import ConcurrencyConflict
from shared.storage.tables.rows import Row

RACES = (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError)


def write_row(table: TableClient, entity: Row, etag: str | None) -> str:
    """Insert `entity` when `etag` is None (it was absent when read), else replace it only if it
    still has `etag`; returns the new ETag. Losing the race raises one of RACES: created, changed
    or deleted since it was read (or, with ResourceNotFoundError, no table at all)."""
    if etag is None:
        meta = table.create_entity(entity)
    else:
        meta = table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    return meta["etag"]


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
                written = write_row(self._table, entity, etag)
            except RACES:
                with self._lock:
                    self._seen = None
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            with self._lock:
                self._seen = (new, written)
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
