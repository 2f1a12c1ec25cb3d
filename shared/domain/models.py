"""Tickets, their action history and the people acting on them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


class Category(StrEnum):
    WIFI = "wifi"
    LAPTOP = "laptop"
    VPN = "vpn"
    PRINTER = "printer"
    EMAIL = "email"
    SOFTWARE = "software"
    HARDWARE = "hardware"
    NETWORK = "network"
    ACCOUNT = "account"
    ACCESS = "access"
    PHONE = "phone"
    SERVER = "server"
    SECURITY = "security"
    CLOUD = "cloud"
    STORAGE = "storage"
    OTHER = "other"


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    PENDING_CLARIFICATION = "pending_clarification"
    ESCALATED = "escalated"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ActionType(StrEnum):
    AUTO_RESOLVE = "AUTO_RESOLVE"
    ESCALATE = "ESCALATE"
    ASSIGN_TO_TEAM = "ASSIGN_TO_TEAM"
    REQUEST_CLARIFICATION = "REQUEST_CLARIFICATION"
    SCHEDULE_FOLLOWUP = "SCHEDULE_FOLLOWUP"
    DEFER_TO_HUMAN = "DEFER_TO_HUMAN"
    SHADOW_DECISION = "SHADOW_DECISION"
    STATUS_CHANGE = "STATUS_CHANGE"
    REOPEN = "REOPEN"
    ROLLBACK = "ROLLBACK"
    FOLLOWUP_SENT = "FOLLOWUP_SENT"
    FEEDBACK_RECEIVED = "FEEDBACK_RECEIVED"
    RESOLUTION_ASSUMED = "RESOLUTION_ASSUMED"  # the feedback window passed unanswered


class Principal(BaseModel):
    """The authenticated caller. Admin implies staff."""

    model_config = ConfigDict(frozen=True)

    sub: str
    roles: frozenset[str] = frozenset()
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_staff(self) -> bool:
        return self.is_admin or "staff" in self.roles

    def can_see(self, ticket: Ticket) -> bool:
        return self.is_staff or ticket.user == self.sub


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """A Python string can hold a lone surrogate (JSON "\\ud800"); no UTF-8 or UTF-16 store can.
    Every other size rule of storage is met by the lengths below and the Table layout
    (shared/storage/sizes.py)."""
    if _SURROGATE.search(text):
        raise ValueError("Contains an unpaired surrogate character, which cannot be stored.")
    return text


Storable = AfterValidator(storable)
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), Storable]
IssueType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Storable]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _underscored(value: Any) -> Any:
    """The web client writes statuses with hyphens (`in-progress`); the API's word is `in_progress`."""
    if isinstance(value, str) and not isinstance(value, Status) and "-" in value:
        return value.replace("-", "_")
    return value


# Words the web client sends for a category of SPEC §5's list: stored and shown back as that category.
CATEGORY_ALIASES = {"mobile": Category.PHONE.value}


def _category_alias(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Category):
        return CATEGORY_ALIASES.get(value, value)
    return value


StatusIn = Annotated[Status, BeforeValidator(_underscored)]
CategoryIn = Annotated[Category, BeforeValidator(_category_alias)]


class TicketCreate(_Strict):
    issue_type: IssueType
    description: Annotated[str, StringConstraints(max_length=10_000), Storable] = ""
    category: CategoryIn = Category.OTHER
    tags: Annotated[list[Tag], Field(max_length=20)] = []
    # The web client's form also sends these: `user` must name the caller (TicketService.create),
    # `status` can only be the status every new ticket gets.
    user: Annotated[str, Storable] | None = None
    status: Literal["new"] | None = None


class StatusChange(_Strict):
    status: StatusIn
    reason: Annotated[str, StringConstraints(max_length=1000), Storable] = ""
    assigned_team: Annotated[str, StringConstraints(max_length=100), Storable] | None = None
    priority: Priority | None = None


class ResolutionOutcome(StrEnum):
    """Where a resolution stands: it moves only from PENDING to one of the others (an answer after
    ASSUMED is still taken)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    ASSUMED = "assumed"
    VOIDED = "voided"  # its action was rolled back


class FeedbackAnswer(BaseModel):
    """One owner's answer as the figures count it (its text stays in the history entries)."""

    resolution_confirmed: bool
    satisfaction_score: int | None = None
    answered_at: datetime


class Resolution(BaseModel):
    autonomous_action: str
    outcome: ResolutionOutcome = ResolutionOutcome.PENDING
    resolution_confirmed: bool | None = None
    satisfaction_score: int | None = None
    feedback_text: str = ""
    followup_sent_at: datetime | None = None
    response_received_at: datetime | None = None
    reopened: bool = False
    reopened_at: datetime | None = None
    reopened_reason: str = ""
    voided_at: datetime | None = None  # when its action was rolled back (outcome VOIDED)
    # What analytics need to move their figures by the difference, kept with every outcome change:
    outcome_at: datetime | None = None  # when `outcome` last changed
    previous_outcome: ResolutionOutcome | None = None  # what it changed from
    previous_answer: FeedbackAnswer | None = None  # the answer the current one replaced
    reopen_seq: int | None = None  # the version of the last REOPEN: names its staff notice
    # When the autonomous action created it: the day its analytics count on (None on rows
    # written before it was kept; analytics then use the day of the event they look at).
    resolved_at: datetime | None = None


class TicketPublic(BaseModel):
    """A ticket as the API shows it: everything but its version."""

    id: int
    issue_type: str
    description: str
    category: Category
    tags: list[str]
    status: Status
    user: str
    assigned_team: str | None = None
    priority: Priority = Priority.MEDIUM
    created_at: datetime
    updated_at: datetime
    agent_processed: bool = False
    agent: dict[str, Any] | None = None
    resolution: Resolution | None = None


class TicketPage(BaseModel):
    results: list[TicketPublic]
    next_cursor: str | None = None


class Ticket(TicketPublic):
    """A ticket as stored. `version` counts committed changes (1 = created); it guards every
    change (see TicketRepository.save) and is not shown (`public()`)."""

    version: int = 1
    # When the ticket first reached resolved or closed (analytics: `closed`, `resolution_seconds`);
    # set by `advance`, never cleared. Not shown.
    done_at: datetime | None = None

    def public(self) -> TicketPublic:
        return TicketPublic.model_validate(self.model_dump(exclude={"version"}))

    def state(self) -> dict[str, Any]:
        """The part of a ticket an action changes and a rollback restores, plus what analytics
        count a state by (`created_at`, `done_at`: shared/domain/analytics.py)."""
        return self.model_dump(
            mode="json",
            include={
                "status",
                "assigned_team",
                "priority",
                "agent_processed",
                "resolution",
                "created_at",
                "done_at",
            },
        )

    def advance(
        self,
        action: ActionType,
        by: str,
        now: datetime,
        changes: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        reasoning: str = "",
        confidence: float | None = None,
        reversible: bool = False,
        touch: bool = True,
    ) -> tuple[Ticket, HistoryEntry]:
        """The one way a ticket changes: the next version and the history entry recording it.

        The entry's `seq` is the new version and it holds the state before and after, so every
        change is counted once and can be shown or rolled back. `touch=False` keeps `updated_at`
        (a shadow decision records a version but changes nothing a person would see).
        """
        update = {**(changes or {}), "version": self.version + 1}
        if touch:
            update["updated_at"] = now
        if self.done_at is None and update.get("status", self.status) in (Status.RESOLVED, Status.CLOSED):
            update["done_at"] = now  # first reached done: analytics count it once, on this day
        changed = self.model_copy(update=update)
        entry = HistoryEntry(
            ticket_id=self.id,
            seq=changed.version,
            action_type=action,
            executed_at=now,
            executed_by=by,
            confidence_score=confidence,
            agent_reasoning=reasoning,
            action_params=dict(params or {}),
            before_state=self.state(),
            after_state=changed.state(),
            rollback_possible=reversible,
        )
        return changed, entry


class ChangeRecord(BaseModel):
    """What a history entry records of a change: stored (HistoryEntry) and shown (HistoryEntryPublic)."""

    action_type: ActionType
    executed_at: datetime
    executed_by: str
    confidence_score: float | None = None
    agent_reasoning: str = ""
    action_params: dict[str, Any] = {}
    before_state: dict[str, Any] = {}
    after_state: dict[str, Any] = {}
    rollback_possible: bool = False
    rolled_back: bool = False
    rolled_back_at: datetime | None = None
    rolled_back_by: str | None = None
    rollback_reason: str | None = None


class HistoryEntry(ChangeRecord):
    """One append-only record of a change. `seq` is the ticket version it produced."""

    ticket_id: int
    seq: int

    @property
    def id(self) -> str:
        return f"{self.ticket_id}-{self.seq}"


class NotificationKind(StrEnum):
    FOLLOWUP = "followup"  # "Is everything still working?" after an auto-resolution
    ROLLBACK = "rollback"  # an autonomous action on the recipient's ticket was undone
    REOPENED = "reopened"  # (to staff) a user said the fix did not hold


NOTIFICATION_TITLE_MAX = 200
NOTIFICATION_MESSAGE_MAX = 4000
LinkName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,19}$")]
Link = Annotated[str, StringConstraints(max_length=1000, pattern=r"^[\x21-\x7e]*$")]  # a URL or path


class Notification(BaseModel):
    """An in-app message to one user, or to every staff member (`user` None).

    `id` names its cause (`rollback-{action id}`, `followup-{ticket}-{seq}`) and `created_at` is
    the cause's time, so writing it again after a retry adds nothing (NotificationStore.add)."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")]
    user: Annotated[str, Storable] | None
    kind: NotificationKind
    ticket_id: int | None = None
    # Bounded so that a notification always fits one Table row whole (shared/storage/sizes.py):
    # the title and message have properties of their own (at most 2 UTF-16 units a character),
    # links are printable ASCII; a longer one is refused when it is built, never cut.
    title: Annotated[str, StringConstraints(min_length=1, max_length=NOTIFICATION_TITLE_MAX), Storable]
    message: Annotated[str, StringConstraints(max_length=NOTIFICATION_MESSAGE_MAX), Storable]
    created_at: datetime
    links: Annotated[dict[LinkName, Link], Field(max_length=5)] = {}
    read: bool = False  # set by its recipient (NotificationStore.mark_read); adding it again keeps it


class Page(BaseModel):
    results: list[Any]
    next_cursor: str | None = None


class AgentMode(StrEnum):
    AUTONOMOUS = "autonomous"
    SHADOW = "shadow"


class AgentControls(BaseModel):
    """The kill switch, mode and rollout, as stored (app settings are the defaults)."""

    enabled: bool
    mode: AgentMode
    rollout_percent: int = Field(ge=0, le=100)
    reason: str = ""
    updated_by: str | None = None
    updated_at: datetime | None = None
    version: int = 0  # committed changes; 0 = the app settings' defaults (not shown: AgentControlsPublic)

    @property
    def status(self) -> str:
        if not self.enabled:
            return "paused"
        return "shadow" if self.mode == AgentMode.SHADOW else "active"


class ControlsUpdate(_Strict):
    enabled: bool | None = None
    mode: AgentMode | None = None
    rollout_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), Storable]


class ProcessRequest(_Strict):
    force: bool = False


class ProcessMessage(BaseModel):
    """The agent queue's message: which ticket to act on, for which request.

    `ticket_version` is the version the endpoint accepted the request on: the agent acts on
    exactly that version or not at all (a ticket a person changed since is `superseded`).
    `ticket` is the ticket as the endpoint read it, so the worker need not read it again;
    left out when too large for a queue message. `attempt` counts the retries scheduled
    while the agent service was unavailable.
    """

    ticket_id: int
    request_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]
    requested_by: str
    force: bool = False
    ticket: Ticket | None = None
    ticket_version: int | None = None
    attempt: int = Field(default=0, ge=0)

    def snapshot(self) -> Ticket | None:
        """The ticket carried, when it is the version accepted. (A message sent before the ticket
        carried its version reads as version 1, so only a request accepted on version 1 uses it.)"""
        if self.ticket is None or self.ticket.version != self.ticket_version:
            return None
        return self.ticket


class FollowupMessage(BaseModel):
    """The follow-ups queue's message: ask the owner whether the auto-resolution `action_seq` held.
    The sweeper sends it when its due-index item is due; `due_at` names that item (the consumer
    removes it when done) and, were it still ahead, the consumer would send the message on until
    then."""

    ticket_id: int
    action_seq: int
    due_at: datetime | None = None


class CheckMessage(BaseModel):
    """The agent-checks queue's message: look again at a scheduled follow-up. `due_at` names the
    due-index row the sweeper sent it for (shared/domain/due.py), which the check removes."""

    ticket_id: int
    action_seq: int
    due_at: datetime | None = None


class RecordStatus(StrEnum):
    """Where a request stands in the idempotency ledger."""

    INPROGRESS = "INPROGRESS"  # claimed by a worker until `expires_at`
    COMPLETED = "COMPLETED"  # done, with its effect (if any) committed


class RequestRecord(BaseModel):
    """Idempotency record of one request in the ledger, kept in the partition of what it changes."""

    request_id: str
    status: RecordStatus
    expires_at: datetime | None = None
    action_type: ActionType | None = None  # the change committed; None when the request changed nothing
    ticket_version: int | None = None  # the version that change produced
    outcome: str | None = None
    etag: str | None = Field(default=None, exclude=True)
