"""`python -m manage index rebuild`: the work-queue index rebuilt from the tickets (repair after a
crash between writes, migration of tickets stored before the index, the oracle in tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.provision import provision
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.tickets import TableTicketRepository

if TYPE_CHECKING:
    from shared.config import Settings


def rebuild(clients: StorageClients) -> tuple[int, int]:
    """(entries added, entries removed). Creates the index table first where it is missing (a
    deployment from before the index: every ticket's entries are then added)."""
    provision(clients)
    repo = TableTicketRepository(
        clients.table(names.TICKETS),
        clients.table(names.TICKET_OWNERS),
        TableIdAllocator(clients.table(names.COUNTERS)),
        clients.table(names.TICKET_QUEUES),
    )
    return repo.rebuild_queues()


def run(settings: Settings) -> int:
    added, removed = rebuild(StorageClients.for_settings(settings))
    print(f"index rebuild: {added} entries added, {removed} removed")
    return 0
