"""Ticket ids from blocks claimed on one counter row (TicketRepository.next_id)."""

from __future__ import annotations

import threading

from azure.data.tables import TableClient

from shared.storage.tables.optimistic import OptimisticRow

ID_BLOCK_SIZE = 50


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
