"""What the API answers: each service returns one of these and OpenAPI shows it (functions/ops.py).

Separate from the stored models (shared/domain/models.py), so a stored field is shown only when a
model here has it: the ticket's version, for one, is not."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

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
    "FeedbackRecorded",
    "Health",
    "HealthReport",
    "HealthStatus",
    "HistoryEntryPublic",
    "HistoryPage",
    "NotificationPage",
    "NotificationPublic",
    "ProcessAccepted",
    "ProcessSkipped",
    "RollbackResult",
    "StorageHealth",
    "TicketPage",
    "TicketPublic",
    "WebNotification",
    "WebNotifications",
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

    @classmethod
    def of(cls, notification: Notification) -> NotificationPublic:
        return cls.model_validate(notification.model_dump(exclude={"user"}))


class NotificationPage(BaseModel):
    """`GET /notifications/`: newest first; `next_cursor` continues after the last one shown."""

    results: list[NotificationPublic]
    next_cursor: str | None = None


class WebNotification(BaseModel):
    """A notification as the web client's header bell reads it (`GET /auth/notifications/`).
    Nothing marks one read yet, so `is_read` is false; `link` is the ticket's (or the first) link."""

    id: str
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
            title=notification.title,
            message=notification.message,
            type=notification.kind,
            time=notification.created_at,
            link=links.get("ticket") or next(iter(links.values()), None),
        )


WebNotifications = RootModel[list[WebNotification]]
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
