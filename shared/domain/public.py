"""What the API answers: each service returns one of these and OpenAPI shows it (functions/ops.py).

Separate from the stored models (shared/domain/models.py), so a stored field is shown only when a
model here has it: the ticket's version, for one, is not."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel

from shared.domain.models import (
    ActionType,
    AgentControls,
    AgentMode,
    ChangeRecord,
    HistoryEntry,
    Notification,
    NotificationKind,
    TicketPage,
    TicketPublic,
)

__all__ = [
    "AgentControlsPublic",
    "AgentHealth",
    "AgentRecommendations",
    "AgentResponse",
    "AgentStatus",
    "AiSuggestions",
    "FeedbackRecorded",
    "Health",
    "HealthReport",
    "HealthStatus",
    "HistoryEntryPublic",
    "HistoryPage",
    "MarkedRead",
    "NotificationPage",
    "NotificationPublic",
    "ProcessAccepted",
    "ProcessSkipped",
    "Recommendation",
    "RollbackResult",
    "SimilarTicket",
    "StorageHealth",
    "TicketPage",
    "TicketPublic",
    "TicketRecommendations",
    "WebNotification",
    "WebNotifications",
    "WebTicketList",
]


class ProcessAccepted(BaseModel):
    """`202`: the request is queued for the agent."""

    ticket_id: int
    request_id: str
    status: Literal["queued"] = "queued"


class ProcessSkipped(BaseModel):
    """`200`: nothing queued; `detail` says why."""

    ticket_id: int
    status: Literal["skipped"] = "skipped"
    detail: str


class HistoryEntryPublic(ChangeRecord):
    """A history entry as shown: named by its `id` (`{ticket}-{seq}`) instead of its keys."""

    id: str

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryEntryPublic:
        return cls.model_validate({"id": entry.id, **entry.model_dump(exclude={"ticket_id", "seq"})})


class RollbackResult(BaseModel):
    """`200` of a rollback: the action undone and the ticket as it now is."""

    message: str
    ticket_id: int
    action_type: ActionType
    rollback_reason: str
    ticket: TicketPublic


class HistoryPage(BaseModel):
    ticket_id: int
    total_actions: int
    action_history: list[HistoryEntryPublic]
    next_cursor: str | None = None


class NotificationPublic(BaseModel):
    """An in-app notification as its recipient sees it."""

    id: str
    kind: NotificationKind
    ticket_id: int | None = None
    title: str
    message: str
    created_at: datetime
    links: dict[str, str] = {}
    read: bool = False

    @classmethod
    def of(cls, notification: Notification) -> NotificationPublic:
        return cls.model_validate(notification.model_dump(exclude={"user"}))


class NotificationPage(BaseModel):
    """`GET /notifications/`: newest first; `next_cursor` continues after the last one shown."""

    results: list[NotificationPublic]
    next_cursor: str | None = None


class WebNotification(BaseModel):
    """A notification as the web client's header bell reads it (`GET /auth/notifications/`).
    `link` is the ticket's (or the first) link."""

    id: str  # the notification's key (NOTIFICATION_CURSOR): what `/{id}/read/` takes back
    is_read: bool = False
    title: str
    message: str
    type: NotificationKind
    time: datetime
    link: str | None = None

    @classmethod
    def of(cls, notification: NotificationPublic) -> WebNotification:
        links = notification.links
        return cls(
            id=notification.id,
            is_read=notification.read,
            title=notification.title,
            message=notification.message,
            type=notification.kind,
            time=notification.created_at,
            link=links.get("ticket") or next(iter(links.values()), None),
        )


WebNotifications = RootModel[list[WebNotification]]
WebTicketList = RootModel[list[TicketPublic]]
"""`GET /tickets/list/`: the page of `/tickets/` as the web client's bare array (cursor in
`X-Next-Cursor`)."""
"""The web client's bare array (the cursor travels in the `X-Next-Cursor` header)."""


class AgentControlsPublic(BaseModel):
    """The agent controls as an admin sees them: everything but their version."""

    enabled: bool
    mode: AgentMode
    rollout_percent: int
    reason: str = ""
    updated_by: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, controls: AgentControls) -> AgentControlsPublic:
        return cls.model_validate(controls.model_dump(exclude={"version"}))


class HealthStatus(BaseModel):
    """What anyone gets from `/health/`."""

    model_config = ConfigDict(frozen=True)  # the public one is cached and shared between calls

    status: Literal["ok", "degraded"]


class StorageHealth(BaseModel):
    ok: bool
    error: str | None = None


class AgentHealth(BaseModel):
    status: str
    enabled: bool
    mode: str
    rollout_percent: int
    reason: str


class HealthReport(HealthStatus):
    """What staff get from `/health/`, checked live."""

    version: str
    environment: str
    storage: StorageHealth
    queues: dict[str, int | None]
    poison: dict[str, int | None]
    agent: AgentHealth


Health = RootModel[HealthReport | HealthStatus]
"""`/health/` as OpenAPI shows it: the staff report, or the status alone."""


class FeedbackRecorded(BaseModel):
    """`200`: the answer to "did the fix hold?" is recorded (it replaces any earlier one)."""

    message: str
    ticket_id: int
    resolution_confirmed: bool
    ticket_reopened: bool


class AgentSolution(BaseModel):
    steps: list[str] = []
    success_probability: float | None = None
    estimated_time: str | None = None


class AgentResponse(BaseModel):
    """The agent's last analysis of a ticket, as the web client's insights panel reads it."""

    confidence: float | None = None
    recommended_action: str | None = None
    reasoning: str = ""
    analysis: dict[str, Any] = {}
    solution: AgentSolution = AgentSolution()
    decided_action: str | None = None  # what the decision table made of it (deferred ones included)
    knowledge_base_entries: list[str] = []


class AgentStatus(BaseModel):
    """`GET /tickets/{id}/agent-status/`: from the ticket's `agent` summary; null before any analysis."""

    ticket_id: int
    status: str
    agent_processed: bool
    agent_response: AgentResponse | None = None
    last_updated: datetime | None = None

    @classmethod
    def of(cls, ticket: TicketPublic) -> AgentStatus:
        agent = ticket.agent
        if not agent:
            return cls(
                ticket_id=ticket.id, status=ticket.status.value, agent_processed=ticket.agent_processed
            )
        return cls(
            ticket_id=ticket.id,
            status=ticket.status.value,
            agent_processed=ticket.agent_processed,
            agent_response=AgentResponse.model_validate(agent, from_attributes=False),
            last_updated=agent.get("processed_at") or ticket.updated_at,
        )


class SimilarTicket(BaseModel):
    ticket_id: int
    issue_type: str
    category: str
    status: str
    score: float  # the embedded matcher's score against the ticket asked about (higher: closer)


class AiSuggestions(BaseModel):
    """`GET /tickets/{id}/ai-suggestions/`: the tickets the caller may see most like this one
    (at most 5, most similar first), and the knowledge-base entries the agent matched it to."""

    ticket_id: int
    similar_tickets: list[SimilarTicket]
    knowledge_base_entries: list[str] = []


class Recommendation(BaseModel):
    type: Literal["high_confidence_solution", "suggested_solution"]
    message: str
    confidence: float | None = None


class TicketRecommendations(BaseModel):
    """One open ticket the agent analysed and did not act on (deferred, or shadow mode), with what
    it would have done."""

    ticket_id: int
    title: str
    created_at: datetime
    category: str
    priority: str
    deferred_because: str | None = None  # the deferral's reason (gate, cap, rollout) or "shadow_mode"
    recommendations: list[Recommendation]


AgentRecommendations = RootModel[list[TicketRecommendations]]
"""`GET /tickets/agent/recommendations/`: the web client's bare array, newest first."""


class MarkedRead(BaseModel):
    """`PATCH /auth/notifications/{id}/read/` and `POST /auth/notifications/read-all/`."""

    marked: int  # notifications this call changed from unread to read


# --- analytics (SPEC §8; the figures' meanings are in shared/domain/report.py)


class ActionBreakdown(BaseModel):
    autonomous_action: str
    total: int  # resolutions it created, voided ones excluded
    confirmed: int
    failed: int


class ResolutionAnalytics(BaseModel):
    """`GET /tickets/resolution-analytics/`: the fate of the resolutions created from `since` to
    `until` (UTC days, both included)."""

    since: date
    until: date
    total_resolutions: int  # not voided
    confirmed_successful: int
    confirmed_failed: int
    assumed_resolved: int  # unanswered in the feedback window: never counted as a success
    pending_feedback: int
    reopened_tickets: int
    rolled_back: int  # resolutions voided by a rollback
    average_satisfaction_score: float | None  # 2 decimals; null when no answer had a score
    satisfaction_responses: int
    success_rate: float  # confirmed / total_resolutions * 100 (the web client's formula)
    confirmed_rate_of_answered: float  # confirmed / (confirmed + failed) * 100
    feedback_response_rate: float  # (confirmed + failed) / total_resolutions * 100
    rollback_rate: float  # voided / resolutions created * 100
    reopen_rate: float  # reopened / total_resolutions * 100
    action_type_breakdown: list[ActionBreakdown]


class ConfidenceDistribution(BaseModel):
    high: int
    medium: int
    low: int


class AgentCaps(BaseModel):
    per_hour: int
    per_day: int


class AgentAnalytics(BaseModel):
    """`GET /tickets/agent/analytics/`: what the agent did from `since` to `until`, and its state
    now (caps usage, status, rollout)."""

    since: date
    until: date
    total_tickets: int
    processed_by_agent: int
    agent_processing_rate: float
    resolution_success_rate: float  # = resolution analytics' success_rate
    average_confidence_score: float  # 3 decimals; 0 when nothing was decided
    decisions: int  # agent decisions with a confidence (the average's denominator)
    confidence_distribution: ConfidenceDistribution
    actions_by_type: dict[str, int]  # autonomous actions executed (rolled-back ones included)
    deferred_to_human: int
    shadow_decisions: int
    rolled_back_actions: int  # autonomous actions rolled back, on the rollback's day
    autonomous_solutions: int  # resolutions the agent created that were not rolled back
    autonomous_actions_last_hour: int  # the caps' count, this hour
    autonomous_actions_today: int  # the caps' count, this UTC day
    caps: AgentCaps
    agent_status: Literal["active", "paused", "shadow"]
    rollout_percent: int
    last_updated: datetime  # when these figures were read


class WeekCount(BaseModel):
    week: str  # ISO week, YYYY-Www
    week_start: date  # its Monday
    count: int


class TicketAnalytics(BaseModel):
    """`GET /tickets/analytics/`: staff see every ticket (maintained aggregates), a user their own."""

    since: date
    until: date
    scope: Literal["all", "mine"]
    total_tickets: int  # created in the window
    open_tickets: int
    closed_tickets: int
    avg_resolution_time_seconds: float | None
    tickets_per_week: list[WeekCount]


class Criterion(BaseModel):
    """One rollout criterion of the weekly report: `passed` null means no data (never a pass)."""

    name: str
    figure: float | None
    threshold: float
    comparison: Literal[">", "<", ">=", "<="]
    passed: bool | None


class WeekAnalytics(BaseModel):
    week: str
    since: date
    until: date
    resolution: ResolutionAnalytics
    agent: AgentAnalytics


class WeeklyReport(BaseModel):
    """`GET /tickets/reports/weekly/`: the week, the week before, and the rollout criteria checked
    on the week."""

    week: str
    generated_at: datetime
    current: WeekAnalytics
    previous: WeekAnalytics
    criteria: list[Criterion]
    all_passed: bool | None  # null when some criterion had no data and none failed


__all__ += [
    "ActionBreakdown",
    "AgentAnalytics",
    "AgentCaps",
    "ConfidenceDistribution",
    "Criterion",
    "ResolutionAnalytics",
    "TicketAnalytics",
    "WeekAnalytics",
    "WeekCount",
    "WeeklyReport",
]
