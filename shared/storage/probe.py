"""Health probes of the storage account: reachability and queue depths."""

from __future__ import annotations

from azure.core.exceptions import AzureError

from shared.storage.clients import StorageClients
from shared.storage.names import QUEUES, TICKETS, poison


class StorageProbe:
    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients

    def ping(self) -> str | None:
        """None when tables answer, else a short reason (no secrets, no stack)."""
        try:
            next(
                iter(self._clients.table(TICKETS).list_entities(results_per_page=1, select=["RowKey"])), None
            )
            return None
        except AzureError as exc:
            return type(exc).__name__

    def queue_depths(self) -> dict[str, int | None]:
        depths: dict[str, int | None] = {}
        for name in QUEUES + tuple(poison(q) for q in QUEUES):
            try:
                depths[name] = self._clients.queue(name).get_queue_properties().approximate_message_count
            except AzureError:
                depths[name] = None
        return depths
