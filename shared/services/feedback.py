"""Resolution feedback: the owner (or staff for them) says whether an auto-resolution held."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from shared.domain import feedback
from shared.domain.feedback import Answered, ResolutionFeedback
from shared.domain.models import ActionType, Notification, NotificationKind, Principal, Ticket
from shared.domain.public import FeedbackRecorded
from shared.errors import AppError, ConcurrencyConflict, ConcurrentUpdate, Conflict, NotFound
from shared.ports import Clock, NotificationStore, TicketRepository
from shared.services.ledger import Once

MAX_ATTEMPTS = 8
log = logging.getLogger("resolvemeq.feedback")


class NoResolution(Conflict):
    code = "no_resolution"


@dataclass(frozen=True)
class OnceAnswer:
    """An answer that may be recorded once: under `request_id` in the ticket's ledger."""

    request_id: str
    used: AppError  # raised when the record exists: the answer was taken before
    check: Callable[[Ticket], None] = lambda ticket: None  # raises to refuse the ticket as read


class FeedbackService:
    """One answer costs a read and one transaction in the ticket's partition; a reopen adds the
    staff notice after the commit (3 round trips)."""

    def __init__(
        self,
        tickets: TicketRepository,
        notifications: NotificationStore,
        clock: Clock,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tickets = tickets
        self.notifications = notifications
        self.clock = clock
        self.pause = pause

    def answer(
        self,
        caller: Principal | None,
        ticket_id: int,
        answer: ResolutionFeedback,
        once: OnceAnswer | None = None,
    ) -> FeedbackRecorded:
        """Record `answer` (replacing any earlier one). Raises NotFound (not the caller's ticket,
        owner or staff), NoResolution (none, or voided), ConcurrentUpdate (still losing the race
        against other writers after MAX_ATTEMPTS).

        With `once` (a one-click link), the answer is taken at most once: its ledger record is
        read with the ticket and committed in the answer's own transaction, so a second use, even
        a concurrent one, finds it and raises `once.used`; `once.check` may refuse the ticket
        (the link's resolution was replaced) before anything is written. A `caller` of None acts
        as the ticket's owner: the link, not a login, says who answers."""
        for attempt in range(MAX_ATTEMPTS):
            if once is None:
                ticket = self.tickets.get(ticket_id)
            else:
                ticket, record = self.tickets.get_with_request(ticket_id, once.request_id)
                if record is not None:
                    raise once.used
            if once is not None and ticket is not None:
                once.check(ticket)
                caller = caller or Principal(sub=ticket.user)
            if ticket is None or caller is None or not caller.can_see(ticket):
                raise NotFound(f"Ticket {ticket_id} was not found.")
            try:
                answered = feedback.answer(ticket, answer, caller.sub, self.clock())
            except feedback.NoResolution:
                raise NoResolution(
                    f"Ticket {ticket_id} has no resolution to give feedback on "
                    "(it was not resolved by the agent, or the resolution was rolled back)."
                ) from None
            notify = partial(self._notify_staff, answered)  # after the commit, beside the index's cleanup
            try:
                if once is None:
                    self.tickets.save(answered.ticket, answered.entries, after_commit=notify)
                else:
                    version = answered.ticket.version
                    done = Once.completed(once.request_id, ActionType.FEEDBACK_RECEIVED, version, "answered")
                    self.tickets.save(answered.ticket, answered.entries, request=done, after_commit=notify)
            except ConcurrencyConflict:
                # Someone changed the ticket meanwhile: decide again on what they committed. The
                # jitter spreads double-submits and concurrent writers apart.
                self.pause(random.uniform(0, 0.005 * 2**attempt))
                continue
            return _recorded(answered)
        raise ConcurrentUpdate("The ticket kept changing while we recorded your answer; please try again.")

    def _notify_staff(self, answered: Answered) -> None:
        """Tell staff about the reopen, after the commit: the answer is never lost to a failed
        notice. The notice is named by its REOPEN's version and dated by it, so writing it again
        adds nothing; every later "no" on the reopened ticket writes it again, which repairs a
        notice lost here (the ticket itself is in the escalated queue either way)."""
        ticket = answered.ticket
        resolution = ticket.resolution
        if resolution is None or resolution.resolution_confirmed or not resolution.reopened:
            return
        if resolution.reopen_seq is None or resolution.reopened_at is None:
            return
        notice = Notification(
            id=f"reopen-{ticket.id}-{resolution.reopen_seq}",
            user=None,
            kind=NotificationKind.REOPENED,
            ticket_id=ticket.id,
            title=f"Ticket {ticket.id} reopened",
            message=f"The user says the fix for “{ticket.issue_type}” did not work; it is escalated.",
            created_at=resolution.reopened_at,
        )
        try:
            self.notifications.add(notice)
        except Exception:  # an outage of the notice store must not turn a recorded answer into an error
            log.exception("ticket %s: the reopen notice was not stored; a later answer retries it", ticket.id)


def _recorded(answered: Answered) -> FeedbackRecorded:
    ticket: Ticket = answered.ticket
    resolution = ticket.resolution
    assert resolution is not None and resolution.resolution_confirmed is not None
    confirmed = resolution.resolution_confirmed
    reopened = not confirmed and resolution.reopened
    if confirmed:
        message = "Thanks for confirming: the ticket is closed."
    elif reopened:
        message = "Sorry the fix did not hold: the ticket is back with our support staff at high priority."
    else:
        message = "Thanks, your answer is recorded: our support staff are already on this ticket."
    return FeedbackRecorded(
        message=message, ticket_id=ticket.id, resolution_confirmed=confirmed, ticket_reopened=reopened
    )
