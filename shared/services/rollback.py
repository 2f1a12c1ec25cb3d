"""An admin's rollback of an autonomous action (`POST /tickets/actions/{action_id}/rollback/`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from shared.domain import rollback as domain
from shared.domain.models import HistoryEntry, Notification, NotificationKind, Principal
from shared.domain.public import RollbackResult
from shared.errors import ConcurrencyConflict, ConcurrentUpdate, Forbidden, NotFound, RollbackConflict
from shared.ports import (
    Clock,
    NotificationStore,
    QuotaExceeded,
    RollbackLog,
    RollbackTally,
    Telemetry,
    TicketRepository,
    WindowLimit,
    WindowUsage,
)
from shared.services.throttle import Quota, throttled

log = logging.getLogger("resolvemeq.rollback")

SAVE_ATTEMPTS = 5
PAUSE_WINDOW = timedelta(hours=1)  # the auto-pause counts the rollbacks of the trailing hour
# `{ticket}-{seq}` as HistoryEntry.id writes it: no sign, no leading zero, within the key layout's 12 digits
ACTION_ID = re.compile(r"^([1-9][0-9]{0,11})-([1-9][0-9]{0,11})$")
AfterRollback = Callable[[RollbackTally, datetime], object]


def parse_action_id(action_id: str) -> tuple[int, int] | None:
    match = ACTION_ID.match(action_id)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _nothing(tally: RollbackTally, at: datetime) -> None:
    return None


class RollbackService:
    """Undo an autonomous action: the ticket back to the action's `before_state`, its resolution
    voided, a ROLLBACK entry, the action marked rolled back (shared/domain/rollback.py).

    Protocol, 4 storage round trips when nothing races:
      1. read the ticket and the action's entry (one query in the ticket's partition);
      2. refuse (404, 409 already_rolled_back / not_reversible / ticket_changed) before writing;
      3. reserve the rollback in the RollbackLog under the action id (the per-admin throttle,
         429 past ROLLBACK_THROTTLE_RATE with nothing written; counted once per action, so
         concurrent or retried rollbacks of one action count once);
      4. commit ticket, ROLLBACK entry and marked action in ONE entity-group transaction, guarded
         by the insert of the new version's entry: of concurrent rollbacks (or a rollback and a
         human change) exactly one commits, the others re-read and decide again (a loser finds
         the action rolled back, 409, or the ticket changed, 409 ticket_changed); a refusal after
         reserving releases the reservation, unless the action was rolled back (it is the
         winner's); a commit that fails otherwise (a timeout: it may have landed) keeps it, and
         the retry of the rollback finds it again (counted once) or finds the action rolled back;
      5. after the commit, the consequences outside the partition, each idempotent: the owner's
         notice (id `rollback-{action_id}`, created at the ROLLBACK's time), `after_rollback`
         (the auto-pause check) with the tally, and the telemetry event.

    Retry completes it: a crash between the commit and step 5 leaves the action marked rolled
    back, and everything step 5 needs is on the marked entry (admin, time, reason). So whoever
    next finds the action rolled back (a retry of the same request, or any later rollback of it)
    first does step 5's notice and auto-pause check again, writing nothing twice, and then
    answers 409 already_rolled_back. Only the telemetry event of a crashed request is not sent
    again (sending it on every 409 would count one rollback many times).
    """

    def __init__(
        self,
        tickets: TicketRepository,
        rollbacks: RollbackLog,
        notices: NotificationStore,
        telemetry: Telemetry,
        clock: Clock,
        limit: WindowLimit,
        after_rollback: AfterRollback = _nothing,
    ) -> None:
        self._tickets, self._rollbacks, self._notices = tickets, rollbacks, notices
        self._telemetry, self._clock, self._limit = telemetry, clock, limit
        self._after_rollback = after_rollback

    def rollback(
        self, caller: Principal, action_id: str, body: domain.RollbackRequest
    ) -> tuple[RollbackResult, Quota]:
        """Raises Forbidden (not an admin), NotFound (malformed or unknown id), RollbackConflict,
        Throttled, ConcurrentUpdate (still racing after the retries)."""
        if not caller.is_admin:
            raise Forbidden("Only admins can roll back an action.")
        ids = parse_action_id(action_id)
        if ids is None:
            raise NotFound(f"Action {action_id} was not found.")
        ticket_id, seq = ids
        tally: RollbackTally | None = None
        for _ in range(SAVE_ATTEMPTS):
            now = self._clock()
            ticket, action = self._tickets.get_with_entry(ticket_id, seq)
            if ticket is None or action is None:
                self._release(action_id, tally)
                raise NotFound(f"Action {action_id} was not found.")
            if action.rolled_back:
                self._complete(ticket.user, action)  # then refused below: already_rolled_back
            try:
                changed, entry, marked = domain.rollback(
                    ticket, action, caller.sub, body.reason, body.force, now
                )
            except domain.RollbackRefused as refused:
                if not action.rolled_back:  # a reservation under this id is then the winner's
                    self._release(action_id, tally)
                raise RollbackConflict(refused.code, refused.detail, **refused.extra) from None
            if tally is None:
                tally = self._reserve(action_id, caller.sub, now)
            notify = partial(self._notify, ticket.user, marked)  # once committed, beside the index's cleanup
            try:
                self._tickets.save(changed, [entry], updated=[marked], after_commit=notify)
            except ConcurrencyConflict:
                continue  # a rollback or another change committed first: read again and decide again
            self._after_rollback(tally, now)
            self._report(ticket_id, action, caller.sub)
            result = RollbackResult(
                message=f"Action {action_id} ({action.action_type.value}) was rolled back.",
                ticket_id=ticket_id,
                action_type=action.action_type,
                rollback_reason=entry.agent_reasoning,
                ticket=changed.public(),
            )
            return result, _quota(tally.usage)
        self._release(action_id, tally)
        raise ConcurrentUpdate(f"Ticket {ticket_id} kept changing; try the rollback again.")

    def _reserve(self, action_id: str, admin: str, now: datetime) -> RollbackTally:
        try:
            return self._rollbacks.reserve(action_id, admin, now, self._limit)
        except QuotaExceeded as exceeded:
            raise throttled(_quota(exceeded.usage), "rollbacks", self._limit.per) from None

    def _release(self, action_id: str, tally: RollbackTally | None) -> None:
        if tally is not None:
            self._rollbacks.release(action_id)

    def _complete(self, owner: str, action: HistoryEntry) -> None:
        """Step 5 again for an action found rolled back (see the class docstring), from what its
        marked entry keeps; each part writes nothing twice."""
        by, at = action.rolled_back_by, action.rolled_back_at
        assert by is not None and at is not None
        self._notify(owner, action)
        if self._clock() - at > PAUSE_WINDOW:
            return  # it no longer counts towards an auto-pause, and its log entry may be pruned
        try:
            tally = self._rollbacks.reserve(action.id, by, at, self._limit)
        except QuotaExceeded:
            return  # its reservation is gone (long past); it cannot count towards a pause now
        self._after_rollback(tally, at)

    def _notify(self, owner: str, marked: HistoryEntry) -> None:
        assert marked.rolled_back_at is not None
        self._notices.add(
            Notification(
                id=f"rollback-{marked.id}",
                user=owner,
                kind=NotificationKind.ROLLBACK,
                ticket_id=marked.ticket_id,
                title="An automatic change to your ticket was undone",
                message=(
                    f"A support admin undid the automatic {_label(marked)} of ticket {marked.ticket_id}; "
                    "a person will look at it."
                ),
                created_at=marked.rolled_back_at,
                links={"ticket": f"/api/tickets/{marked.ticket_id}/"},
            )
        )

    def _report(self, ticket_id: int, action: HistoryEntry, admin: str) -> None:
        try:
            self._telemetry.rollback(ticket_id, action.action_type.value, admin)
        except Exception:  # the rollback is committed and answered whatever monitoring does
            log.exception("rollback telemetry failed for ticket %s", ticket_id)


def _label(action: HistoryEntry) -> str:
    return action.action_type.value.lower().replace("_", " ")


def _quota(usage: WindowUsage) -> Quota:
    return Quota(usage.limit, max(0, usage.limit - usage.used), usage.reset_at)
