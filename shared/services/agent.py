"""The autonomous agent pipeline: accept a process request, then act on it exactly once."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from shared.domain import actions
from shared.domain.decision import Thresholds, confidence_level, decide
from shared.domain.models import (
    ActionType,
    AgentMode,
    HistoryEntry,
    Principal,
    ProcessMessage,
    ProcessRequest,
    RequestRecord,
    Status,
    Ticket,
)
from shared.domain.rollout import in_rollout
from shared.errors import AgentUnavailable, ConcurrencyConflict, Forbidden, NotFound, RequestInProgress
from shared.services.controls import ControlsService
from shared.services.throttle import Quota, Throttle
from shared.services.tickets import Clock
from shared.storage.ports import ActionCaps, MessageQueue, TicketRepository

log = logging.getLogger("resolvemeq.agent")

INPROGRESS, COMPLETED = "INPROGRESS", "COMPLETED"
SAVE_ATTEMPTS = 3


class Analyser(Protocol):
    def analyse(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """SPEC §6 step 1 shape; raises AgentUnavailable."""


class Telemetry(Protocol):
    def action(
        self, ticket_id: int, action_type: str, confidence: float | None, level: str, outcome: str
    ) -> None:
        """An autonomous action (or deferral) was recorded."""


@dataclass(frozen=True)
class Queues:
    agent: str
    followups: str
    checks: str


@dataclass(frozen=True)
class Timings:
    followup_delay_seconds: int
    claim_seconds: int = 120


SNAPSHOT_LIMIT = 24 * 1024  # bytes of ticket JSON carried in a message (queue messages hold 64 KiB)


class ProcessService:
    """`POST /tickets/{id}/process/`: check, throttle, enqueue. Three storage round trips."""

    def __init__(
        self, tickets: TicketRepository, queue: MessageQueue, throttle: Throttle, queues: Queues
    ) -> None:
        self._tickets, self._queue, self._throttle, self._queues = tickets, queue, throttle, queues

    def request(
        self, caller: Principal, ticket_id: int, body: ProcessRequest
    ) -> tuple[dict[str, Any], Quota | None]:
        ticket = self._tickets.get(ticket_id)
        if ticket is None or not caller.can_see(ticket):
            raise NotFound(f"Ticket {ticket_id} was not found.")
        if body.force and not caller.is_staff:
            raise Forbidden("Only staff can force the agent to process a ticket again.")
        if ticket.agent_processed and not body.force:
            return {
                "ticket_id": ticket_id,
                "status": "skipped",
                "detail": "The agent already processed it.",
            }, None
        quota = self._throttle.hit(caller.sub)
        message = ProcessMessage(
            ticket_id=ticket_id, request_id=uuid.uuid4().hex, requested_by=caller.sub, force=body.force
        )
        with_snapshot = message.model_copy(update={"ticket": ticket, "ticket_version": ticket.version})
        if len(with_snapshot.model_dump_json().encode()) <= SNAPSHOT_LIMIT:
            message = with_snapshot
        self._queue.send(self._queues.agent, message.model_dump(mode="json"))
        return {"ticket_id": ticket_id, "request_id": message.request_id, "status": "queued"}, quota


class AgentWorker:
    """Acts on one queued request: analyse → decide → gate → one atomic commit → follow-up.

    Delivery is at-least-once. The request's record makes the effect happen once: it is
    claimed INPROGRESS (insert-if-absent; a killed worker's claim expires and is taken
    over), and turns COMPLETED inside the same transaction as the ticket change, so a
    ticket is never half-changed and a redelivered message finds the work done.

    Storage round trips on the common path: the claim, the cap counter, the transaction
    and (after an auto-resolution) the follow-up; the ticket comes with the message.
    """

    def __init__(
        self,
        tickets: TicketRepository,
        caps: ActionCaps,
        controls: ControlsService,
        queue: MessageQueue,
        analyser: Analyser,
        thresholds: Thresholds,
        clock: Clock,
        queues: Queues,
        timings: Timings,
        telemetry: Telemetry,
    ) -> None:
        self._tickets, self._caps, self._controls, self._queue = tickets, caps, controls, queue
        self._analyser, self._thresholds, self._clock = analyser, thresholds, clock
        self._queues, self._timings, self._telemetry = queues, timings, telemetry

    def execute(self, message: ProcessMessage) -> str:
        """The outcome: an action type, `deferred:<reason>`, `shadow`, `duplicate`, `skipped`, `missing`."""
        ticket = message.snapshot() or self._tickets.get(message.ticket_id)
        if ticket is None:
            log.warning(
                "ticket %s does not exist; dropping request %s", message.ticket_id, message.request_id
            )
            return "missing"
        etag = self._claim(ticket, message)
        if etag is None:
            return "duplicate"
        if ticket.agent_processed and not message.force:
            self._tickets.release_request(ticket.id, message.request_id, etag)
            return "skipped"
        try:
            committed = self._commit(ticket, message)
        except Exception:
            self._tickets.release_request(ticket.id, message.request_id, etag)  # the retry may run
            raise
        if isinstance(committed, str):
            if committed == "skipped":
                self._tickets.release_request(ticket.id, message.request_id, etag)
            return committed
        changed, entry, analysis = committed
        self._after_commit(changed, entry.action_type)  # if this fails, the retry finds COMPLETED and resends
        return self._report(changed, entry, analysis)

    def _claim(self, ticket: Ticket, message: ProcessMessage) -> str | None:
        """Our claim's ETag, or None when the request was already completed.
        Raises RequestInProgress while another worker's claim is live."""
        now = self._clock()
        claim = RequestRecord(
            request_id=message.request_id,
            status=INPROGRESS,
            expires_at=now + timedelta(seconds=self._timings.claim_seconds),
        )
        try:
            return self._tickets.claim_request(ticket.id, claim, None)
        except ConcurrencyConflict:
            pass  # a redelivery: see what the record says
        current, record = self._tickets.get_with_request(ticket.id, message.request_id)
        if record is None or current is None:
            raise RequestInProgress(f"request {message.request_id} was released meanwhile; retrying")
        if record.status == COMPLETED:
            self._after_commit(current, record.action_type)  # resend a follow-up a crash may have lost
            return None
        if record.expires_at and record.expires_at > now:
            raise RequestInProgress(f"request {message.request_id} is being handled by another worker")
        try:
            return self._tickets.claim_request(ticket.id, claim, record)  # a dead worker's claim
        except ConcurrencyConflict as exc:
            raise RequestInProgress(str(exc)) from exc

    def _commit(
        self, ticket: Ticket, message: ProcessMessage
    ) -> str | tuple[Ticket, HistoryEntry, dict[str, Any] | None]:
        """Analyse, decide, gate, and commit the change with the COMPLETED record; or say why not."""
        analysis = self._analyse(ticket)
        decided = decide(analysis, self._thresholds) if analysis else None
        slot_taken = False
        for _ in range(SAVE_ATTEMPTS):
            now = self._clock()
            controls = self._controls.current()
            provenance = self._provenance(analysis, message, controls.mode)
            reason = self._gate(ticket, decided, controls.enabled, controls.rollout_percent)
            if reason is None and controls.mode == AgentMode.SHADOW:
                assert analysis is not None and decided is not None
                changed, entry = actions.shadow(ticket, decided, analysis, now, provenance)
            else:
                if reason is None and not slot_taken:
                    reason = self._caps.try_acquire(now)
                    slot_taken = reason is None
                if reason is None:
                    assert analysis is not None and decided is not None
                    changed, entry = actions.act(ticket, decided, analysis, now, provenance)
                else:
                    changed, entry = actions.defer(ticket, reason, decided, analysis, now, provenance)
            done = RequestRecord(
                request_id=message.request_id, status=COMPLETED, action_type=entry.action_type
            )
            try:
                self._tickets.save(changed, [entry], request=done)
            except ConcurrencyConflict:
                fresh, record = self._tickets.get_with_request(ticket.id, message.request_id)
                if record is not None and record.status == COMPLETED:
                    return "duplicate"  # a copy of this message committed first
                if fresh is None or (fresh.agent_processed and not message.force):
                    return "skipped"
                ticket = fresh
                continue
            return changed, entry, analysis
        raise ConcurrencyConflict(f"ticket {ticket.id} kept changing while the agent acted on it")

    def _analyse(self, ticket: Ticket) -> dict[str, Any] | None:
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
    def _provenance(analysis: dict[str, Any] | None, message: ProcessMessage, mode: str) -> dict[str, Any]:
        analysis = analysis or {}
        return {
            "agent": analysis.get("agent", {}),
            "knowledge_base_entries": analysis.get("knowledge_base_entries", []),
            "request_id": message.request_id,
            "requested_by": message.requested_by,
            "mode": str(mode),
        }

    def _after_commit(self, ticket: Ticket, action_type: str | None) -> None:
        """Delayed messages: the follow-up of an auto-resolution, the check of a scheduled follow-up.
        Sending twice is harmless: both consumers act only once per ticket version."""
        delay = self._timings.followup_delay_seconds
        if action_type == ActionType.AUTO_RESOLVE:
            self._queue.send(
                self._queues.followups, {"ticket_id": ticket.id, "action_seq": ticket.version}, delay
            )
        elif action_type == ActionType.SCHEDULE_FOLLOWUP:
            self._queue.send(
                self._queues.checks, {"ticket_id": ticket.id, "action_seq": ticket.version}, delay
            )

    def _report(self, ticket: Ticket, entry: HistoryEntry, analysis: dict[str, Any] | None) -> str:
        confidence = (analysis or {}).get("confidence")
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


class CheckService:
    """The later check of a SCHEDULE_FOLLOWUP: escalate a ticket that is still not resolved."""

    def __init__(self, tickets: TicketRepository, clock: Clock) -> None:
        self._tickets, self._clock = tickets, clock

    def run(self, ticket_id: int, action_seq: int) -> str:
        for _ in range(SAVE_ATTEMPTS):
            ticket = self._tickets.get(ticket_id)
            if ticket is None:
                return "missing"
            if ticket.status != Status.IN_PROGRESS or ticket.version != action_seq:
                return "not_needed"  # resolved, or a person or the agent moved it on since
            now = self._clock()
            analysis = {
                "analysis": {"severity": "high"},
                "reasoning": "The scheduled follow-up found it unresolved.",
            }
            changed, entry = actions.act(
                ticket, ActionType.ESCALATE, analysis, now, {"trigger": "followup_check"}
            )
            changed.agent = ticket.agent
            entry.executed_by = actions.SYSTEM
            try:
                self._tickets.save(changed, [entry])
                return "escalated"
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"ticket {ticket_id} kept changing during its follow-up check")
