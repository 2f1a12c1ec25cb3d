"""The follow-up consumer: ask the owner "Is everything still working?" once per auto-resolution.

Delivery is at-least-once, so it runs on the idempotency ledger (shared/services/ledger.py), under
the request `followup-{action_seq}` in the ticket's partition:

1. the sweeper (shared/services/sweep.py) sends the message when its due-index item is due, with
   the item's `due_at`; one still ahead (the sweeper's clock ahead of this one) is sent on with
   what is left of it, and nothing else happens;
2. the ticket and the request's record are read at once; a COMPLETED record ends it (a
   redelivery: the delivery that committed has notified and posted);
3. claimed, the rules of shared/domain/followups.py decide: a ticket no longer resolved, a
   resolution voided, answered, already followed up or made by a later auto-resolution completes
   the request unchanged, its outcome recorded;
4. the in-app notification is written (idempotent: the same row every time), then FOLLOWUP_SENT
   commits with the COMPLETED record in one transaction. A crash between the two leaves a
   notification and a claim: the redelivery writes the same row again and commits;
5. after the commit, and only by the delivery that committed, the webhook post, best effort;
6. the due index (shared/domain/due.py): the feedback window's item (`assume`, due at the
   resolution plus FEEDBACK_WINDOW_SECONDS) is written while the resolution is still pending, then
   the follow-up's own item is removed. Every ending does this (sent, skipped, a duplicate), so a
   crash anywhere before it leaves the follow-up's item, which the sweeper sends again after its
   grace period: that delivery finds the request completed and writes and removes what is left.

Why the post comes after the commit: the in-app notification is the record and the webhook a
courtesy. Posting before would post again on every retry of a commit that failed (a storage
blip, a lost race), and a webhook that is down would hold the commit for its timeouts. After it,
exactly one post goes out per follow-up, except when a worker dies between the commit and the
post, which loses that one post (the in-app notification stays); a bounded retry covers a
webhook's brief outage, and its failure never fails the message.

Storage round trips on the common path: the read, the claim, the notification, the transaction,
the history read that dates the resolution, the feedback window's item, the removal of the
follow-up's item.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from shared.domain.due import DueKind, schedule
from shared.domain.followups import (
    FollowupSkipped,
    followup_notice,
    followup_sent,
    request_id,
    resolved_at,
    skip_reason,
    webhook_text,
)
from shared.domain.models import (
    ActionType,
    FollowupMessage,
    HistoryEntry,
    RecordStatus,
    ResolutionOutcome,
    Status,
    Ticket,
)
from shared.errors import ConcurrencyConflict
from shared.ports import (
    MAX_QUEUE_DELAY_SECONDS,
    Clock,
    DueIndex,
    MessageQueue,
    NotificationStore,
    TicketRepository,
    Webhook,
)
from shared.services.ledger import ClaimOutcome, Once

log = logging.getLogger("resolvemeq.followups")

CLAIM_POLL_SECONDS = 30  # a delivery that meets a live claim looks again this often, until it expires
SAVE_ATTEMPTS = 3
HISTORY_PAGE = 100


class FollowupOutcome(StrEnum):
    """What `run` did (or one of FollowupSkipped)."""

    SENT = "sent"
    RESCHEDULED = "rescheduled"  # not due yet: sent on with the rest of its delay
    DUPLICATE = "duplicate"  # completed before, by another delivery
    WAITING = "waiting"  # put back until another delivery's live claim expires
    MISSING = "missing"  # the ticket does not exist


# The follow-up's one-click answer links, {"yes": url, "no": url}, for (ticket, action seq, resolved
# at): shared/services/links.py `answer_links` with the settings.
AnswerLinks = Callable[[Ticket, int, datetime], dict[str, str]]


@dataclass(frozen=True)
class FollowupTimings:
    delay_seconds: int  # FOLLOWUP_DELAY_SECONDS: the notification is dated when it was due
    queue: str
    feedback_window_seconds: int = 604800  # FEEDBACK_WINDOW_SECONDS: then pending is assumed


class FollowupService:
    def __init__(
        self,
        tickets: TicketRepository,
        once: Once,
        notifications: NotificationStore,
        queue: MessageQueue,
        webhook: Webhook | None,
        clock: Clock,
        timings: FollowupTimings,
        due: DueIndex,
        links: AnswerLinks | None = None,
    ) -> None:
        self._tickets, self._once, self._notifications = tickets, once, notifications
        self._due = due
        self._queue, self._webhook, self._clock, self._timings = queue, webhook, clock, timings
        self._links = links

    def run(self, message: FollowupMessage) -> str:
        """Send the follow-up of one auto-resolution, once: a FollowupOutcome or FollowupSkipped.
        Raises (after releasing its claim) when storage fails, so the host retries the message."""
        now = self._clock()
        if message.due_at is not None and message.due_at > now:
            return self._later(message, message.due_at - now)
        request = request_id(message.action_seq)
        ticket, record = self._tickets.get_with_request(message.ticket_id, request)
        if ticket is None:
            log.warning("follow-up of ticket %s: no such ticket", message.ticket_id)
            if message.due_at is not None:
                self._due.remove(DueKind.FOLLOWUP, message.ticket_id, message.action_seq, message.due_at)
            return FollowupOutcome.MISSING
        if record is not None and record.status == RecordStatus.COMPLETED:
            self._finish(ticket, message)
            return FollowupOutcome.DUPLICATE
        claim = self._once.claim(ticket.id, request)
        if claim.outcome == ClaimOutcome.DUPLICATE:
            self._finish(ticket, message)
            return FollowupOutcome.DUPLICATE
        if claim.outcome == ClaimOutcome.WAIT:
            self._queue.send(self._timings.queue, message, min(claim.wait_seconds, CLAIM_POLL_SECONDS))
            return FollowupOutcome.WAITING
        try:
            outcome, ticket, answers = self._send(ticket, message.action_seq, claim.etag)
        except Exception:
            self._once.release(ticket.id, request, claim.etag)  # the host's retry may run
            raise
        log.info("follow-up of ticket %s (action %s): %s", ticket.id, message.action_seq, outcome)
        if outcome == FollowupOutcome.SENT:
            self._post(ticket, answers)  # before the due index: a failure there must not cost the post
        self._finish(ticket, message)  # raising, the host's retry finds it done and finishes
        return outcome

    def _later(self, message: FollowupMessage, left: timedelta) -> str:
        delay = min(math.ceil(left.total_seconds()), MAX_QUEUE_DELAY_SECONDS)
        self._queue.send(self._timings.queue, message, delay)
        return FollowupOutcome.RESCHEDULED

    def _send(self, ticket: Ticket, seq: int, claim: str) -> tuple[str, Ticket, dict[str, str]]:
        """Notify and commit FOLLOWUP_SENT with the COMPLETED record, or complete unchanged; a lost
        race reads the ticket again and decides again. Returns the outcome, the ticket as it was
        left, and the one-click answer links the notification carries, for the webhook post."""
        request = request_id(seq)
        for _ in range(SAVE_ATTEMPTS):
            since = self._since(ticket, seq)
            reason = skip_reason(ticket, seq, since)
            if reason is not None:
                self._once.complete_unchanged(ticket.id, request, claim, reason)
                return reason, ticket, {}
            resolved = resolved_at(ticket, seq, since)
            due = resolved + timedelta(seconds=self._timings.delay_seconds)
            answers = self._links(ticket, seq, resolved) if self._links else {}
            notice = followup_notice(ticket, seq, due, answers)
            changed, entry = followup_sent(ticket, seq, self._clock())
            done = Once.completed(request, ActionType.FOLLOWUP_SENT, changed.version, FollowupOutcome.SENT)
            try:  # the notice is stored before the commit (a crash between: the retry sends it)
                self._tickets.save(
                    changed, [entry], request=done, before_commit=partial(self._notifications.add, notice)
                )
                return FollowupOutcome.SENT, changed, answers
            except ConcurrencyConflict:
                pass  # the ticket changed since it was read
            fresh, record = self._tickets.get_with_request(ticket.id, request)
            if fresh is None:
                return FollowupOutcome.MISSING, ticket, {}
            if record is not None and record.status == RecordStatus.COMPLETED:
                return FollowupOutcome.DUPLICATE, fresh, {}  # a delivery that took our claim over committed
            ticket = fresh
        raise ConcurrencyConflict(f"ticket {ticket.id} kept changing during its follow-up")

    def _finish(self, ticket: Ticket, message: FollowupMessage) -> None:
        """The follow-up is done (sent, moot, or done before): write the feedback window's item
        while this auto-resolution is still pending, then remove the follow-up's own item (the
        message names it by its due time; a message without one came from no item)."""
        seq = message.action_seq
        resolution = ticket.resolution
        pending = resolution is not None and resolution.outcome == ResolutionOutcome.PENDING
        if ticket.status == Status.RESOLVED and pending:
            since = self._since(ticket, seq)
            if skip_reason(ticket, seq, since) in (None, FollowupSkipped.ALREADY_SENT):
                window = timedelta(seconds=self._timings.feedback_window_seconds)
                due = resolved_at(ticket, seq, since) + window
                self._due.add(schedule(DueKind.ASSUME, ticket.id, seq, due, self._clock()))
        if message.due_at is not None:
            self._due.remove(DueKind.FOLLOWUP, ticket.id, seq, message.due_at)

    def _since(self, ticket: Ticket, seq: int) -> list[HistoryEntry]:
        return history_since(self._tickets, ticket, seq)

    def _post(self, ticket: Ticket, answers: dict[str, str]) -> None:
        if self._webhook is None:
            return
        try:
            posted = self._webhook.post(webhook_text(ticket, answers))
        except Exception:  # the port never raises; a bug there must not fail a committed follow-up
            log.exception("follow-up of ticket %s: the webhook failed", ticket.id)
            return
        if not posted:
            log.warning("follow-up of ticket %s: the webhook did not take it (in-app only)", ticket.id)


def history_since(tickets: TicketRepository, ticket: Ticket, seq: int) -> list[HistoryEntry]:
    """The history entries from `seq` to the ticket's version, read only when the ticket moved
    on since `seq` (its follow-up, a person's change that kept it resolved, a later
    auto-resolution); one page on the common path."""
    if ticket.version <= seq:
        return []
    found: list[HistoryEntry] = []
    cursor = None
    while True:
        page = tickets.history(ticket.id, min(HISTORY_PAGE, ticket.version - seq + 1), cursor)
        for entry in page.results:
            if entry.seq < seq:
                return found
            found.append(entry)
        if page.next_cursor is None or (found and found[-1].seq == seq):
            return found
        cursor = page.next_cursor
