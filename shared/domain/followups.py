"""The follow-up of an auto-resolution ("Is everything still working?"), as pure rules: whether it
is still due, what sending it changes, and what it says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from shared.domain.actions import SYSTEM
from shared.domain.models import (
    ActionType,
    HistoryEntry,
    Notification,
    NotificationKind,
    ResolutionOutcome,
    Status,
    Ticket,
)

FOLLOWUP_TITLE = "Is everything still working?"


class FollowupSkipped(StrEnum):
    """Why a follow-up is not sent."""

    NOT_RESOLVED = "not_resolved"  # the ticket is no longer resolved
    VOIDED = "voided"  # the auto-resolution was rolled back
    ANSWERED = "answered"  # the owner already said (or the window passed: assumed)
    ALREADY_SENT = "already_sent"
    SUPERSEDED = "superseded"  # the resolution is not the one of this auto-resolution


def request_id(action_seq: int) -> str:
    """The follow-up's request in the ticket's idempotency ledger: one per auto-resolution."""
    return f"followup-{action_seq}"


def notification_id(ticket_id: int, action_seq: int) -> str:
    return f"followup-{ticket_id}-{action_seq}"


def skip_reason(ticket: Ticket, action_seq: int, since: Sequence[HistoryEntry]) -> FollowupSkipped | None:
    """None when the follow-up of the AUTO_RESOLVE at version `action_seq` is due, else why not.

    `since` holds the history entries from `action_seq` up to the ticket's version; it may be empty
    while the ticket is still at `action_seq` (that change is then the auto-resolution)."""
    resolution = ticket.resolution
    if ticket.status != Status.RESOLVED or resolution is None:
        return FollowupSkipped.NOT_RESOLVED
    if resolution.outcome == ResolutionOutcome.VOIDED:
        return FollowupSkipped.VOIDED
    if resolution.outcome != ResolutionOutcome.PENDING:
        return FollowupSkipped.ANSWERED
    if resolution.followup_sent_at is not None:
        return FollowupSkipped.ALREADY_SENT
    if ticket.version < action_seq:
        return FollowupSkipped.SUPERSEDED
    for entry in since:
        if entry.seq == action_seq and entry.action_type != ActionType.AUTO_RESOLVE:
            return FollowupSkipped.SUPERSEDED
        if entry.seq == action_seq and entry.rolled_back:
            return FollowupSkipped.VOIDED
        if entry.seq > action_seq and entry.action_type == ActionType.AUTO_RESOLVE:
            return FollowupSkipped.SUPERSEDED  # a later auto-resolution made the current resolution
    return None


def resolved_at(ticket: Ticket, action_seq: int, since: Sequence[HistoryEntry]) -> datetime:
    """When the auto-resolution at `action_seq` happened: the ticket's last change while it is
    still at that version, else that entry's time."""
    for entry in since:
        if entry.seq == action_seq:
            return entry.executed_at
    return ticket.updated_at


def followup_sent(ticket: Ticket, action_seq: int, now: datetime) -> tuple[Ticket, HistoryEntry]:
    """The follow-up went out: `followup_sent_at` on the resolution and a FOLLOWUP_SENT entry by the
    system. Only for a ticket whose follow-up is due (skip_reason None)."""
    if ticket.resolution is None:
        raise ValueError(f"ticket {ticket.id} has no resolution to follow up")
    resolution = ticket.resolution.model_copy(update={"followup_sent_at": now})
    return ticket.advance(
        ActionType.FOLLOWUP_SENT,
        SYSTEM,
        now,
        {"resolution": resolution},
        params={"action_seq": action_seq, "notification_id": notification_id(ticket.id, action_seq)},
    )


def followup_notice(
    ticket: Ticket, action_seq: int, at: datetime, answers: Mapping[str, str] | None = None
) -> Notification:
    """The owner's in-app notification. `at` must be the same for every delivery of one follow-up
    (the time it was due), so writing it again adds nothing; so must `answers`, the one-click
    answer links (`yes`, `no`)."""
    return Notification(
        id=notification_id(ticket.id, action_seq),
        user=ticket.user,
        kind=NotificationKind.FOLLOWUP,
        ticket_id=ticket.id,
        title=FOLLOWUP_TITLE,
        message=(
            f"Your ticket #{ticket.id} “{ticket.issue_type}” was resolved automatically. "
            "Is everything still working? Tell us whether the fix held; if it did not, the ticket "
            "is reopened and goes to a person."
        ),
        created_at=at,
        links={"ticket": f"/api/tickets/{ticket.id}/", **(answers or {})},
    )


def webhook_text(ticket: Ticket, answers: Mapping[str, str] | None = None) -> str:
    """What a chat channel is told: the ticket number and its owner, never what the ticket says
    (its description or title are the owner's words); then the one-click answer links, bare
    URLs that Slack and Teams both turn into links."""
    owner = ticket.user.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # Slack's escapes
    text = (
        f"{FOLLOWUP_TITLE} Ticket #{ticket.id} of {owner} was resolved automatically; "
        "the owner was asked in ResolveMeQ whether the fix held."
    )
    if answers and "yes" in answers and "no" in answers:
        text += f"\nYes, it works: {answers['yes']}\nNo, still broken: {answers['no']}"
    return text
