"""Wires settings, storage and services once per worker process; tests swap in fakes."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
)
from limits.storage import Storage, storage_from_string
from pydantic import ValidationError

from shared import observability
from shared.agent.embedded import EmbeddedAgent
from shared.agent.embedded.similar import TicketMatcher
from shared.auth import Authenticator
from shared.config import Settings, get_settings, problems, setting_names
from shared.domain.decision import Thresholds
from shared.domain.models import AgentControls, AgentMode
from shared.domain.report import Thresholds as RolloutThresholds
from shared.errors import ServiceMisconfigured, ServiceUnavailable, StorageUnavailable, ThrottleContended
from shared.ports import (
    ActionCaps,
    Analyser,
    AnalyticsStore,
    Clock,
    ControlsRepository,
    DueIndex,
    MessageQueue,
    NotificationStore,
    RequestLedger,
    RollbackLog,
    Telemetry,
    TicketRepository,
    Webhook,
)
from shared.services.agent import Queues
from shared.services.agent.checks import CheckService
from shared.services.agent.process import ProcessService
from shared.services.agent.worker import AgentWorker, Timings
from shared.services.analytics import Recording, ReplayingLedger, RetryingAnalytics
from shared.services.autopause import AutoPause
from shared.services.controls import ControlsService
from shared.services.feedback import FeedbackService
from shared.services.followups import FollowupService, FollowupTimings
from shared.services.health import HealthService
from shared.services.insights import InsightService
from shared.services.ledger import Once
from shared.services.links import LinkService, LinkSettings, answer_links
from shared.services.notifications import NotificationService
from shared.services.reports import Caps, ReportService
from shared.services.rollback import RollbackService
from shared.services.sweep import Sweeper, SweepTimings
from shared.services.throttle import Throttle
from shared.services.tickets import TicketService
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.memory import (
    InMemoryActionCaps,
    InMemoryAnalytics,
    InMemoryControlsRepository,
    InMemoryDueIndex,
    InMemoryMessageQueue,
    InMemoryNotificationStore,
    InMemoryRequestLedger,
    InMemoryRollbackLog,
    InMemoryTicketRepository,
)
from shared.storage.probe import StorageProbe
from shared.storage.provision import Provisioner
from shared.storage.queues import AzureMessageQueue
from shared.storage.ratelimit import RateLimitContentionError, table_storage_uri
from shared.storage.rates import LimitsRateCounter, window_limit
from shared.storage.tables.analytics import TableAnalytics
from shared.storage.tables.caps import TableActionCaps
from shared.storage.tables.controls import TableControlsRepository
from shared.storage.tables.due import TableDueIndex
from shared.storage.tables.ids import TableIdAllocator
from shared.storage.tables.ledger import TableRequestLedger
from shared.storage.tables.notifications import TableNotificationStore
from shared.storage.tables.rollbacks import TableRollbackLog
from shared.storage.tables.tickets import TableTicketRepository

log = logging.getLogger("resolvemeq.container")
QUEUES = Queues(agent=names.AGENT_QUEUE, followups=names.FOLLOWUP_QUEUE, checks=names.CHECK_QUEUE)


def utc_now() -> datetime:
    return datetime.now(UTC)


def analyser_for(settings: Settings) -> Analyser:
    if settings.agent_kind == "azure_openai":
        from shared.agent.azure_openai import AzureOpenAIAnalyser

        return AzureOpenAIAnalyser(
            settings.azure_openai_endpoint,
            settings.azure_openai_deployment,
            api_key=settings.azure_openai_api_key,
            api_version=settings.azure_openai_api_version,
            timeout=settings.azure_openai_timeout_seconds,
        )
    if settings.agent_kind == "embedded":
        return EmbeddedAgent()
    if settings.agent_api_url:
        from shared.agent.client import AgentApiClient

        return AgentApiClient(
            settings.agent_api_url, settings.agent_api_key, settings.agent_api_timeout_seconds
        )
    return EmbeddedAgent()


def rollout_thresholds(s: Settings) -> RolloutThresholds:
    return RolloutThresholds(
        min_success_rate=s.rollout_min_success_rate,
        target_success_rate=s.rollout_target_success_rate,
        min_satisfaction=s.rollout_min_satisfaction,
        max_reopen_rate=s.rollout_max_reopen_rate,
        max_rollback_rate=s.rollout_max_rollback_rate,
        max_daily_rollback_rate=s.rollout_max_daily_rollback_rate,
        min_processing_rate=s.rollout_min_processing_rate,
        max_processing_rate=s.rollout_max_processing_rate,
        min_avg_confidence=s.rollout_min_avg_confidence,
    )


def link_settings(settings: Settings) -> LinkSettings:
    keys = (settings.feedback_link_secret, settings.feedback_link_secret_previous)
    return LinkSettings(
        tuple(key.encode() for key in keys if key), settings.public_base_url, settings.feedback_window_seconds
    )


def webhook_for(url: str) -> Webhook:
    """Imported here: httpx is only needed when a webhook is set (a cold start pays for no more)."""
    from shared.notify.webhook import HttpWebhook

    return HttpWebhook(url)


def rate_limit_storage(settings: Settings, clients: StorageClients | None = None) -> Storage:
    uri = settings.ratelimit_storage_uri or table_storage_uri(names.RATE_LIMITS)
    options: dict[str, Any] = {}
    if uri.startswith("azuretables://"):
        clients = clients or StorageClients.for_settings(settings)
        if clients.identity:
            options.update(endpoint=clients.identity.table_endpoint, credential=clients.credential)
        else:
            options["connection_string"] = clients.connection_string
    storage = storage_from_string(uri, **options)
    if not isinstance(storage, Storage):
        raise ValueError(f"RATELIMIT_STORAGE_URI {uri!r} names an async storage; use a synchronous one")
    return storage


@dataclass
class Container:
    settings: Settings
    tickets: TicketRepository
    ledger: RequestLedger  # the request records `tickets.save` commits with a change: the same storage
    caps: ActionCaps
    controls_repo: ControlsRepository
    queue: MessageQueue
    analyser: Analyser
    throttle_storage: Storage
    notifications: NotificationStore
    storage: StorageClients | None = None
    clock: Clock = utc_now
    telemetry: Telemetry = field(default_factory=observability.SentryTelemetry)
    rollback_log: RollbackLog = field(default_factory=InMemoryRollbackLog)
    webhook: Webhook | None = None  # NOTIFY_WEBHOOK_URL's, built from the settings when not given
    due: DueIndex = field(default_factory=InMemoryDueIndex)
    analytics: AnalyticsStore = field(default_factory=InMemoryAnalytics)

    def __post_init__(self) -> None:
        s = self.settings
        # Every committed change is recorded in the analytics tallies by the repository itself
        # (shared/services/analytics.py); a redelivery finding its request done records it again.
        # A record that fails after its commit (a storage outage) is retried by this process, before
        # its next record and before the sweeper's next fold.
        self.recorded = RetryingAnalytics(self.analytics, self.clock)
        self.recording = Recording(
            self.tickets,
            self.recorded,
            Thresholds(s.confidence_high, s.confidence_medium, s.success_prob_auto_resolve),
            self.clock,
        )
        self.tickets = self.recording
        self.ledger = ReplayingLedger(self.ledger, self.recording)
        self.provisioner = Provisioner(self.storage) if self.storage else None
        self.auth = Authenticator(s)
        self.ticket_service = TicketService(
            self.tickets, self.clock, window_limit(s.ticket_create_throttle_rate)
        )
        defaults = AgentControls(
            enabled=s.agent_enabled, mode=AgentMode(s.agent_mode), rollout_percent=s.agent_rollout_percent
        )
        self.controls = ControlsService(self.controls_repo, defaults, self.clock)
        self.auto_pause = AutoPause(self.controls, self.rollback_log, s.auto_pause_rollbacks_per_hour)
        probe = StorageProbe(self.storage) if self.storage else None
        self.health = HealthService(probe, self.controls, s.app_version, s.environment)
        throttle = Throttle(LimitsRateCounter(self.throttle_storage, s.agent_throttle_rate, "process"))
        self.process_service = ProcessService(self.tickets, self.queue, throttle, QUEUES)
        self.agent_worker = AgentWorker(
            self.tickets,
            Once(self.ledger, self.clock, s.agent_claim_seconds),
            self.caps,
            self.controls,
            self.queue,
            self.analyser,
            Thresholds(s.confidence_high, s.confidence_medium, s.success_prob_auto_resolve),
            self.clock,
            QUEUES,
            Timings(s.followup_delay_seconds, s.agent_retry_seconds),
            self.telemetry,
            self.due,
        )
        self.check_service = CheckService(self.tickets, self.clock, self.due)
        self.rollback_service = RollbackService(
            self.tickets,
            self.rollback_log,
            self.notifications,
            self.telemetry,
            self.clock,
            window_limit(s.rollback_throttle_rate),
            after_rollback=self.auto_pause.after_rollback,
        )
        self.notification_service = NotificationService(self.notifications)
        self.insight_service = InsightService(self.tickets, TicketMatcher(), s.confidence_high)
        if self.webhook is None and s.notify_webhook_url:
            self.webhook = webhook_for(s.notify_webhook_url)
        self.followup_service = FollowupService(
            self.tickets,
            Once(self.ledger, self.clock, s.agent_claim_seconds),
            self.notifications,
            self.queue,
            self.webhook,
            self.clock,
            FollowupTimings(s.followup_delay_seconds, names.FOLLOWUP_QUEUE, s.feedback_window_seconds),
            self.due,
            links=partial(answer_links, link_settings(s)),
        )
        self.sweeper = Sweeper(
            self.due, self.tickets, self.queue, self.clock, QUEUES, SweepTimings(), analytics=self.recorded
        )
        self.feedback_service = FeedbackService(self.tickets, self.notifications, self.clock)
        self.link_service = LinkService(self.tickets, self.feedback_service, self.clock, link_settings(s))
        self.report_service = ReportService(
            self.analytics,
            self.caps,
            Caps(s.max_actions_per_hour, s.max_actions_per_day),
            self.controls,
            self.tickets,
            rollout_thresholds(s),
            self.clock,
        )

    def ensure_storage(self) -> None:
        """Create the tables and queues once per process, before the first storage operation
        (the Azure host creates none); retried by the next call after a failure."""
        if self.provisioner:
            self.provisioner.ensure()

    @classmethod
    def for_azure(cls, settings: Settings) -> Container:
        """Clients only, no I/O: storage is provisioned by `ensure_storage` (get_container)."""
        storage = StorageClients.for_settings(settings)
        tickets = TableTicketRepository(
            storage.table(names.TICKETS),
            storage.table(names.TICKET_OWNERS),
            TableIdAllocator(storage.table(names.COUNTERS)),
        )
        return cls(
            settings=settings,
            tickets=tickets,
            ledger=TableRequestLedger(storage.table(names.TICKETS)),
            caps=TableActionCaps(
                storage.table(names.COUNTERS), settings.max_actions_per_hour, settings.max_actions_per_day
            ),
            controls_repo=TableControlsRepository(storage.table(names.CONTROLS)),
            queue=AzureMessageQueue(storage),
            analyser=analyser_for(settings),
            throttle_storage=rate_limit_storage(settings, storage),
            notifications=TableNotificationStore(storage.table(names.NOTIFICATIONS)),
            storage=storage,
            rollback_log=TableRollbackLog(storage.table(names.CONTROLS)),
            due=TableDueIndex(storage.table(names.DUE)),
            analytics=TableAnalytics(storage.table(names.ANALYTICS)),
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
            "rollback_log": InMemoryRollbackLog(),
            "notifications": InMemoryNotificationStore(),
            "due": InMemoryDueIndex(),
            "analytics": InMemoryAnalytics(),
        }
        parts.update(overrides)
        if "ledger" not in parts:  # the one the repository's `save` writes to
            parts["ledger"] = getattr(parts["tickets"], "ledger", None) or InMemoryRequestLedger()
        return cls(settings=settings, clock=clock, **parts)


_container: Container | None = None
_injected = False  # a container a test put in place is used as given: its storage is its own affair
_refusal: ServiceMisconfigured | None = None
_lock = threading.Lock()


def get_container() -> Container:
    """The worker's container, built on first use (never at import), its storage provisioned.

    Refused settings raise ServiceMisconfigured (every function answers 503) and are logged
    once per process, by setting name and reason, never by value. A storage failure while
    provisioning propagates (503) and the next call tries again."""
    global _container, _refusal
    with _lock:
        if _refusal is not None:
            raise _refusal
        if _container is None:
            try:
                settings = get_settings()
            except ValidationError as exc:
                _refusal = ServiceMisconfigured(
                    f"The service is misconfigured ({', '.join(setting_names(exc))}); "
                    "an operator must fix its settings."
                )
                log.error("settings refused, every function answers 503: %s", "; ".join(problems(exc)))
                raise _refusal from None
            observability.init_sentry(settings)
            _container = Container.for_azure(settings)
        container, built_here = _container, not _injected
    if built_here:
        container.ensure_storage()
    return container


def storage_failed(exc: Exception) -> ServiceUnavailable | None:
    """The 503 a storage failure answers, or None when the error is not an outage (a 4xx from
    storage is our bug). A missing table or queue makes the next call provision again."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, RateLimitContentionError):
        return ThrottleContended("Too many requests at once for this limit; please try again.")
    if isinstance(exc, HttpResponseError) and _names_missing_storage(exc):  # a batch's too
        container = _container
        if container and container.provisioner:
            container.provisioner.forget()
        return StorageUnavailable("Storage is being prepared; please try again shortly.")
    if isinstance(exc, ClientAuthenticationError) or (
        isinstance(exc, HttpResponseError) and (exc.status_code is None or exc.status_code >= 500)
    ):
        return StorageUnavailable("Storage is unavailable; please try again shortly.")
    if isinstance(exc, AzureError) and not isinstance(exc, HttpResponseError):
        # ServiceRequestError (cannot connect), ServiceResponseError (timeout, dropped), ...
        return StorageUnavailable("Storage is unavailable; please try again shortly.")
    return None


def _names_missing_storage(exc: HttpResponseError) -> bool:
    """TableNotFound or QueueNotFound; the tables SDK re-raises some errors without their code
    decoded, so the response body is looked at too."""
    codes = ("TableNotFound", "QueueNotFound")
    return str(getattr(exc, "error_code", None) or "") in codes or any(c in str(exc) for c in codes)


def use_container(container: Container | None) -> None:
    """Replace the worker's container (tests), used as given (no provisioning: round-trip counts
    stay those of the operations); None rebuilds from settings, provisioned, on next use."""
    global _container, _injected, _refusal
    with _lock:
        _container, _injected = container, container is not None
        _refusal = None
        if container is None:
            get_settings.cache_clear()
