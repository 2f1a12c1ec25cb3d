"""Wires settings, storage and services once per worker process; tests swap in fakes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from limits.storage import Storage, storage_from_string

from shared import observability
from shared.agent.embedded import EmbeddedAgent
from shared.auth import Authenticator
from shared.config import Settings, get_settings
from shared.domain.decision import Thresholds
from shared.domain.models import AgentControls, AgentMode
from shared.services.agent import (
    AgentWorker,
    Analyser,
    CheckService,
    ProcessService,
    Queues,
    Telemetry,
    Timings,
)
from shared.services.controls import ControlsService
from shared.services.health import HealthService
from shared.services.throttle import Throttle
from shared.services.tickets import Clock, TicketService
from shared.storage import provision as names
from shared.storage.clients import StorageClients
from shared.storage.memory import (
    InMemoryActionCaps,
    InMemoryControlsRepository,
    InMemoryMessageQueue,
    InMemoryTicketRepository,
)
from shared.storage.ports import ActionCaps, ControlsRepository, MessageQueue, TicketRepository
from shared.storage.probe import StorageProbe
from shared.storage.queues import AzureMessageQueue
from shared.storage.ratelimit import table_storage_uri
from shared.storage.tables import (
    TableActionCaps,
    TableControlsRepository,
    TableIdAllocator,
    TableTicketRepository,
)

QUEUES = Queues(agent=names.AGENT_QUEUE, followups=names.FOLLOWUP_QUEUE, checks=names.CHECK_QUEUE)


def utc_now() -> datetime:
    return datetime.now(UTC)


def analyser_for(settings: Settings) -> Analyser:
    if settings.agent_api_url:
        from shared.agent.client import AgentApiClient

        return AgentApiClient(
            settings.agent_api_url, settings.agent_api_key, settings.agent_api_timeout_seconds
        )
    return EmbeddedAgent()


def rate_limit_storage(settings: Settings) -> Storage:
    uri = settings.ratelimit_storage_uri or table_storage_uri(names.RATE_LIMITS)
    options: dict[str, Any] = {}
    if uri.startswith("azuretables://"):
        options["connection_string"] = StorageClients(settings.storage_connection).connection_string
    storage = storage_from_string(uri, **options)
    if not isinstance(storage, Storage):
        raise ValueError(f"RATELIMIT_STORAGE_URI {uri!r} names an async storage; use a synchronous one")
    return storage


@dataclass
class Container:
    settings: Settings
    tickets: TicketRepository
    caps: ActionCaps
    controls_repo: ControlsRepository
    queue: MessageQueue
    analyser: Analyser
    throttle_storage: Storage
    storage: StorageClients | None = None
    clock: Clock = utc_now
    telemetry: Telemetry = field(default_factory=observability.SentryTelemetry)

    def __post_init__(self) -> None:
        s = self.settings
        self.auth = Authenticator(s)
        create_throttle = Throttle(self.throttle_storage, s.ticket_create_throttle_rate, "create")
        self.ticket_service = TicketService(self.tickets, self.clock, create_throttle)
        defaults = AgentControls(
            enabled=s.agent_enabled, mode=AgentMode(s.agent_mode), rollout_percent=s.agent_rollout_percent
        )
        self.controls = ControlsService(self.controls_repo, defaults, self.clock)
        probe = StorageProbe(self.storage) if self.storage else None
        self.health = HealthService(probe, self.controls, s.app_version, s.environment)
        throttle = Throttle(self.throttle_storage, s.agent_throttle_rate, "process")
        self.process_service = ProcessService(self.tickets, self.queue, throttle, QUEUES)
        self.agent_worker = AgentWorker(
            self.tickets,
            self.caps,
            self.controls,
            self.queue,
            self.analyser,
            Thresholds(s.confidence_high, s.confidence_medium, s.success_prob_auto_resolve),
            self.clock,
            QUEUES,
            Timings(s.followup_delay_seconds, s.agent_claim_seconds, s.agent_retry_seconds),
            self.telemetry,
        )
        self.check_service = CheckService(self.tickets, self.clock)

    @classmethod
    def for_azure(cls, settings: Settings) -> Container:
        storage = StorageClients(settings.storage_connection)
        tickets = TableTicketRepository(
            storage.table(names.TICKETS),
            storage.table(names.TICKET_OWNERS),
            TableIdAllocator(storage.table(names.COUNTERS)),
        )
        return cls(
            settings=settings,
            tickets=tickets,
            caps=TableActionCaps(
                storage.table(names.COUNTERS), settings.max_actions_per_hour, settings.max_actions_per_day
            ),
            controls_repo=TableControlsRepository(storage.table(names.CONTROLS)),
            queue=AzureMessageQueue(storage),
            analyser=analyser_for(settings),
            throttle_storage=rate_limit_storage(settings),
            storage=storage,
        )

    @classmethod
    def in_memory(cls, settings: Settings, clock: Clock = utc_now, **overrides: Any) -> Container:
        parts: dict[str, Any] = {
            "tickets": InMemoryTicketRepository(),
            "caps": InMemoryActionCaps(settings.max_actions_per_hour, settings.max_actions_per_day),
            "controls_repo": InMemoryControlsRepository(),
            "queue": InMemoryMessageQueue(),
            "analyser": EmbeddedAgent(),
            "throttle_storage": storage_from_string("memory://"),
        }
        return cls(settings=settings, clock=clock, **{**parts, **overrides})


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
