"""Run a queued request once, on the idempotency ledger (the RequestLedger port).

Delivery is at-least-once, so every consumer whose effect must happen once goes through the same
steps:

    claim = once.claim(ticket_id, request_id)
    DUPLICATE -> done before: `claim.record` holds what it committed (resend what a crash may
                 have lost, never redo the effect)
    WAIT      -> another worker's claim is live: put the message back, invisible for (at most)
                 `claim.wait_seconds`, rather than burn its dequeue count
    CLAIMED   -> do the work, then exactly one of:
                 - commit the effect with `Once.completed(...)` in the SAME transaction
                   (TicketRepository.save(..., request=...)): the effect and the COMPLETED record
                   commit together or not at all;
                 - `once.complete_unchanged(...)` when the request changes nothing;
                 - `once.release(...)` when it failed, so the host's retry can run.

A claim is inserted if absent and lives `claim_seconds`, longer than the host's functionTimeout,
so a live claim means its worker may still be running; an expired one (a killed worker's) is
taken over by its ETag, once. Every later write is conditional on our claim's ETag, so a worker
whose claim was taken over can neither complete nor release it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from shared.domain.models import ActionType, RecordStatus, RequestRecord
from shared.errors import ConcurrencyConflict, RequestInProgress
from shared.ports import Clock, RequestLedger


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # ours: do the work, then commit with `completed`, `complete_unchanged` or `release`
    DUPLICATE = "duplicate"  # completed before; `record` says with what
    WAIT = "waiting"  # another worker's live claim; look again after `wait_seconds`


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    etag: str = ""  # our claim's, when CLAIMED
    record: RequestRecord | None = None  # the COMPLETED record, when DUPLICATE
    wait_seconds: int = 0  # until the live claim has expired, when WAIT


class Once:
    """The run-once protocol on one ledger; records are kept under the `scope` the effect changes."""

    def __init__(self, ledger: RequestLedger, clock: Clock, claim_seconds: int) -> None:
        self._ledger, self._clock, self._claim_seconds = ledger, clock, claim_seconds

    def claim(self, scope: int, request_id: str) -> Claim:
        """Ours (one round trip on the common path), a duplicate, or wait. Raises RequestInProgress
        (the host retries the message) when another worker won the same record meanwhile."""
        now = self._clock()
        claim = RequestRecord(
            request_id=request_id,
            status=RecordStatus.INPROGRESS,
            expires_at=now + timedelta(seconds=self._claim_seconds),
        )
        try:
            return Claim(ClaimOutcome.CLAIMED, etag=self._ledger.claim(scope, claim, None))
        except ConcurrencyConflict:
            pass  # a redelivery: see what the record says
        record = self._ledger.get(scope, request_id)
        if record is None:
            raise RequestInProgress(f"request {request_id} was released meanwhile; retrying")
        if record.status == RecordStatus.COMPLETED:
            return Claim(ClaimOutcome.DUPLICATE, record=record)
        if record.expires_at and record.expires_at > now:
            remaining = math.ceil((record.expires_at - now).total_seconds()) + 1
            return Claim(ClaimOutcome.WAIT, wait_seconds=remaining)
        try:
            return Claim(
                ClaimOutcome.CLAIMED, etag=self._ledger.claim(scope, claim, record)
            )  # a dead worker's
        except ConcurrencyConflict as exc:
            raise RequestInProgress(str(exc)) from exc

    @staticmethod
    def completed(
        request_id: str, action_type: ActionType | None, ticket_version: int | None, outcome: str
    ) -> RequestRecord:
        """The COMPLETED record to commit in the effect's own transaction."""
        return RequestRecord(
            request_id=request_id,
            status=RecordStatus.COMPLETED,
            action_type=action_type,
            ticket_version=ticket_version,
            outcome=outcome,
        )

    def complete_unchanged(self, scope: int, request_id: str, etag: str, outcome: str) -> bool:
        """Close a request that changed nothing, so a redelivery does not do its work again. False
        when the claim is no longer ours (taken over by a redelivery, which decides for itself)."""
        try:
            self._ledger.complete(scope, self.completed(request_id, None, None, outcome), etag)
        except ConcurrencyConflict:
            return False
        return True

    def release(self, scope: int, request_id: str, etag: str) -> None:
        """Give our claim up so the retry can run; a claim no longer ours is left alone."""
        self._ledger.release(scope, request_id, etag)
