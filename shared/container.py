"""Wires settings, storage and services once per worker process; tests swap in fakes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from shared import observability
from shared.auth import Authenticator
from shared.config import Settings, get_settings
from shared.services.health import HealthService
from shared.services.tickets import Clock, TicketService
from shared.storage import provision as names
from shared.storage.clients import StorageClients
from shared.storage.memory import InMemoryTicketRepository
from shared.storage.ports import TicketRepository
from shared.storage.probe import StorageProbe
from shared.storage.tables import TableIdAllocator, TableTicketRepository


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    tickets: TicketRepository
    storage: StorageClients | None = None
    clock: Clock = utc_now

    def __post_init__(self) -> None:
        self.auth = Authenticator(self.settings)
        self.ticket_service = TicketService(self.tickets, self.clock)
        probe = StorageProbe(self.storage) if self.storage else None
        self.health = HealthService(probe, self.settings.app_version, self.settings.environment)

    @classmethod
    def for_azure(cls, settings: Settings) -> Container:
        storage = StorageClients(settings.storage_connection)
        tickets = TableTicketRepository(
            storage.table(names.TICKETS),
            storage.table(names.TICKET_OWNERS),
            TableIdAllocator(storage.table(names.COUNTERS)),
        )
        return cls(settings=settings, tickets=tickets, storage=storage)

    @classmethod
    def in_memory(cls, settings: Settings, clock: Clock = utc_now) -> Container:
        return cls(settings=settings, tickets=InMemoryTicketRepository(), clock=clock)


_container: Container | None = None
_lock = threading.Lock()


def get_container() -> Container:
    """The worker's container, built on first use (never at import)."""
    global _container
    with _lock:
        if _container is None:
            settings = get_settings()
            observability.init_sentry(settings)
            _container = Container.for_azure(settings)
        return _container


def use_container(container: Container | None) -> None:
    """Replace the worker's container (tests); None rebuilds from settings on next use."""
    global _container
    with _lock:
        _container = container
