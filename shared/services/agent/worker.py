"""The worker side of the agent pipeline: act on one queued request exactly once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain import actions
from shared.domain.analysis import Analysis
from shared.domain.decision import Thresholds, confidence_level, decide
from shared.domain.due import DueKind, schedule
from shared.domain.models import (
    ActionType,
    AgentMode,
    HistoryEntry,
    ProcessMessage,
    RecordStatus,
    Ticket,
)
from shared.domain.rollout import in_rollout
from shared.errors import AgentUnavailable, ConcurrencyConflict
from shared.ports import (
    ActionCaps,
    Analyser,
    Clock,
    DueIndex,
    MessageQueue,
    Telemetry,
    TicketRepository,
)
from shared.services.agent import ACTIONABLE, Queues
from shared.services.controls import ControlsService
from shared.services.ledger import ClaimOutcome, Once

log = logging.getLogger("resolvemeq.agent")

CLAIM_POLL_SECONDS = 30  # a delivery that meets a live claim looks again this often, until it expires


class Outcome(StrEnum):
    """What `execute` returns when it commits no action (an action returns its type, or
    `deferred:<reason>`, or `shadow`)."""

    SUPERSEDED = "superseded"  # the ticket changed since the request: left alone
    SKIPPED = "skipped"  # the agent already processed it (or this version's shadow decision)
    DUPLICATE = "duplicate"  # a redelivery of a completed request
    WAITING = "waiting"  # put back until another worker's live claim expires
    RETRYING = "retrying"  # the agent service is down; tried again later
    MISSING = "missing"  # the ticket does not exist


@dataclass(frozen=True)
class Timings:
    followup_delay_seconds: int
    agent_retry_seconds: int = 30  # first wait after the agent service failed; doubles each time
    agent_retries: int = 3  # then the ticket is deferred to humans


@dataclass(frozen=True)
class Decision:
    """What the worker commits for one request, and the cap slot it took for it (if any)."""

    ticket: Ticket
    entry: HistoryEntry
    analysis: Analysis | None
    slot_taken_at: datetime | None


class AgentWorker:
    """Acts on one queued request: analyse → decide → gate → one atomic commit → follow-up.

    Delivery is at-least-once. The request's record in the ledger (shared/services/ledger.py)
    makes the effect happen once: it is claimed INPROGRESS (insert-if-absent; a killed worker's
    claim expires and is taken over), and turns COMPLETED inside the same transaction as the
    ticket change, so a ticket is never half-changed and a redelivered message finds the work
    done. A claim lives AGENT_CLAIM_SECONDS, longer than the host's functionTimeout, so a live
    claim means its worker may still be running; a delivery that finds one is put back on the
    queue, invisible until the claim expires (looking again at least every CLAIM_POLL_SECONDS),
    rather than burning its dequeue count.

    People first: the agent acts on exactly the version the request was accepted on.
    A ticket changed since (by a person, or by the agent for another request) is left
    alone: the request completes as `superseded` (or `skipped`), changing nothing.

    Caps: a slot is taken just before the commit, held under the request id, and given
    back when the commit loses (a conflict). When the commit fails otherwise the slot is
    kept for the retry of the same request, which finds and reuses it; so the cap is
    never exceeded, and a slot stays used only by a committed action or by a request
    that is still being retried (or was poisoned).

    Later work (the follow-up of an auto-resolution, the check of a scheduled follow-up) is
    written to the due index BEFORE the commit, in place of a delayed queue message after it: a
    crash between the two leaves an item whose action never committed, which its consumer finds
    moot and drops, never a committed action without its follow-up; and the sweeper sends it
    when due, whatever the delay (a queue message could wait 7 days at most).

    Storage round trips on the common path: the claim, the cap counter, (for an auto-resolution
    or a scheduled follow-up) the due item, and the transaction; the ticket comes with the message.
    """

    def __init__(
        self,
        tickets: TicketRepository,
        once: Once,
        caps: ActionCaps,
        controls: ControlsService,
        queue: MessageQueue,
        analyser: Analyser,
        thresholds: Thresholds,
        clock: Clock,
        queues: Queues,
        timings: Timings,
        telemetry: Telemetry,
        due: DueIndex,
    ) -> None:
        self._tickets, self._once, self._caps, self._controls = tickets, once, caps, controls
        self._due = due
        self._queue = queue
        self._analyser, self._thresholds, self._clock = analyser, thresholds, clock
        self._queues, self._timings, self._telemetry = queues, timings, telemetry

    def execute(self, message: ProcessMessage) -> str:
        """The outcome: an action type, `deferred:<reason>`, `shadow`, `superseded`, `skipped`,
        `duplicate`, `waiting` (put back until a live claim expires), `retrying` (the agent
        service is down; tried again later), `missing`."""
        ticket = message.snapshot() or self._tickets.get(message.ticket_id)
        if ticket is None:
            log.warning(
                "ticket %s does not exist; dropping request %s", message.ticket_id, message.request_id
            )
            return Outcome.MISSING
        claimed = self._claim(ticket.id, message)
        if isinstance(claimed, Outcome):
            return claimed
        claim = claimed
        try:
            decided = self._decide(ticket, message)
            if isinstance(decided, Outcome):
                if decided == Outcome.RETRYING:
                    self._retry_later(message)
                    self._once.release(ticket.id, message.request_id, claim)
                else:
                    self._complete_unchanged(ticket.id, message, claim, decided)
                return decided
        except Exception:
            self._once.release(ticket.id, message.request_id, claim)  # the retry may run
            raise
        committed = self._commit(ticket, message, decided, claim)
        if committed is not None:
            return committed
        return self._report(decided.ticket, decided.entry, decided.analysis)

    def _claim(self, ticket_id: int, message: ProcessMessage) -> str | Outcome:
        """Our claim's ETag; or `duplicate` (already completed) or `waiting` (put back until
        another worker's live claim expires)."""
        claim = self._once.claim(ticket_id, message.request_id)
        if claim.outcome == ClaimOutcome.CLAIMED:
            return claim.etag
        if claim.outcome == ClaimOutcome.DUPLICATE:
            return Outcome.DUPLICATE  # its due item was written before it committed
        wait = min(claim.wait_seconds, CLAIM_POLL_SECONDS)
        self._queue.send(self._queues.agent, message, wait)
        log.info("request %s is held by another worker; looking again in %s s", message.request_id, wait)
        return Outcome.WAITING

    def _decide(self, ticket: Ticket, message: ProcessMessage) -> Decision | Outcome:
        """What to commit, or why nothing will be (`superseded`, `skipped`, `retrying`)."""
        if message.ticket_version is not None and ticket.version != message.ticket_version:
            return Outcome.SKIPPED if ticket.agent_processed and not message.force else Outcome.SUPERSEDED
        if ticket.agent_processed and not message.force:
            return Outcome.SKIPPED
        if ticket.status not in ACTIONABLE and not message.force:
            return Outcome.SUPERSEDED
        controls = self._controls.current()
        shadow = controls.enabled and controls.mode == AgentMode.SHADOW
        if shadow and not message.force and self._shadowed(ticket):
            return Outcome.SKIPPED  # this version's shadow decision is recorded; don't pay to analyse again
        analysis = self._analyse(ticket)
        if analysis is None and message.attempt < self._timings.agent_retries:
            return Outcome.RETRYING
        decided = decide(analysis, self._thresholds) if analysis is not None else None
        now = self._clock()
        controls = self._controls.current()  # again: the kill switch may have moved during the analysis
        provenance = self._provenance(analysis, message, controls.mode)
        reason = self._gate(ticket, decided, controls.enabled, controls.rollout_percent)
        if reason is None and controls.mode == AgentMode.SHADOW:
            assert analysis is not None and decided is not None
            changed, entry = actions.shadow(ticket, decided, analysis, now, provenance)
            return Decision(changed, entry, analysis, None)
        slot_taken_at = None
        if reason is None:
            reason = self._caps.try_acquire(now, _holder(message))
            slot_taken_at = now if reason is None else None
        if reason is None:
            assert analysis is not None and decided is not None
            changed, entry = actions.act(ticket, decided, analysis, now, provenance)
        else:
            changed, entry = actions.defer(ticket, reason, decided, analysis, now, provenance)
        return Decision(changed, entry, analysis, slot_taken_at)

    def _commit(
        self, ticket: Ticket, message: ProcessMessage, decided: Decision, claim: str
    ) -> Outcome | None:
        """Commit the change with the COMPLETED record, its due item written first (beside the
        queue entries): None when committed, else the outcome."""
        action = decided.entry.action_type
        done = Once.completed(message.request_id, action, decided.ticket.version, action.value)
        try:
            self._tickets.save(
                decided.ticket, [decided.entry], request=done, before_commit=lambda: self._schedule(decided)
            )
            return None
        except ConcurrencyConflict:
            pass  # someone committed this version first
        except Exception:
            # Unknown whether it committed (or its due item failed, and nothing did): keep the
            # slot (the retry of this request reuses it, or finds the commit) and let the host retry.
            self._once.release(ticket.id, message.request_id, claim)
            raise
        fresh, record = self._tickets.get_with_request(ticket.id, message.request_id)
        if record is not None and record.status == RecordStatus.COMPLETED:
            return Outcome.DUPLICATE  # a copy of this message committed first, with this slot
        if decided.slot_taken_at is not None:
            self._caps.release(decided.slot_taken_at, _holder(message))
        outcome = Outcome.SKIPPED if fresh is not None and fresh.agent_processed else Outcome.SUPERSEDED
        self._complete_unchanged(ticket.id, message, claim, outcome)
        return outcome

    def _complete_unchanged(
        self, ticket_id: int, message: ProcessMessage, claim: str, outcome: Outcome
    ) -> None:
        """Close a request that changed nothing, so a redelivery does not analyse it again."""
        # not ours any more when a redelivery took it over: that one decides the same
        self._once.complete_unchanged(ticket_id, message.request_id, claim, outcome)
        log.info("ticket %s: request %s %s", ticket_id, message.request_id, outcome)

    def _retry_later(self, message: ProcessMessage) -> None:
        delay = self._timings.agent_retry_seconds * 2**message.attempt
        retry = message.model_copy(update={"attempt": message.attempt + 1})
        self._queue.send(self._queues.agent, retry, delay)
        log.warning("agent unavailable for ticket %s; trying again in %s s", message.ticket_id, delay)

    def _shadowed(self, ticket: Ticket) -> bool:
        latest = self._tickets.get_entry(ticket.id, ticket.version)
        return latest is not None and latest.action_type == ActionType.SHADOW_DECISION

    def _analyse(self, ticket: Ticket) -> Analysis | None:
        try:
            return self._analyser.analyse(
                {
                    "ticket_id": ticket.id,
                    "issue_type": ticket.issue_type,
                    "description": ticket.description,
                    "category": ticket.category.value,
                    "tags": ticket.tags,
                    "user": ticket.user,
                }
            )
        except AgentUnavailable as exc:
            log.warning("agent unavailable for ticket %s: %s", ticket.id, exc)
            return None

    def _gate(self, ticket: Ticket, decided: ActionType | None, enabled: bool, rollout: int) -> str | None:
        if decided is None:
            return "agent_unavailable"
        if not enabled:
            return "agent_disabled"
        if not in_rollout(ticket.id, rollout):
            return "outside_rollout"
        return None

    @staticmethod
    def _provenance(analysis: Analysis | None, message: ProcessMessage, mode: str) -> dict[str, Any]:
        said = analysis.as_dict() if analysis is not None else {}
        return {
            "agent": said.get("agent", {}),
            "knowledge_base_entries": said.get("knowledge_base_entries", []),
            "request_id": message.request_id,
            "requested_by": message.requested_by,
            "mode": str(mode),
        }

    def _schedule(self, decided: Decision) -> None:
        """The due item of the change about to commit: its follow-up or its check, named by the
        version it produces. Written again by a retry, it is the same item (or one more, dropped
        as a duplicate by its consumer)."""
        kinds = {ActionType.AUTO_RESOLVE: DueKind.FOLLOWUP, ActionType.SCHEDULE_FOLLOWUP: DueKind.CHECK}
        kind = kinds.get(decided.entry.action_type)
        if kind is None:
            return
        now = self._clock()
        due = now + timedelta(seconds=self._timings.followup_delay_seconds)
        self._due.add(schedule(kind, decided.ticket.id, decided.ticket.version, due, now))

    def _report(self, ticket: Ticket, entry: HistoryEntry, analysis: Analysis | None) -> str:
        confidence = analysis.confidence if analysis is not None else None
        level = confidence_level(float(confidence or 0), self._thresholds)
        if entry.action_type == ActionType.DEFER_TO_HUMAN:
            outcome = f"deferred:{entry.action_params['reason']}"
        elif entry.action_type == ActionType.SHADOW_DECISION:
            outcome = "shadow"
        else:
            outcome = entry.action_type.value
        self._telemetry.action(ticket.id, entry.action_type.value, confidence, level, outcome)
        log.info("ticket %s: %s (confidence %s)", ticket.id, outcome, confidence)
        return outcome


def _holder(message: ProcessMessage) -> str:
    return f"{message.ticket_id}/{message.request_id}"
