"""The request side of the agent pipeline: accept a process request and enqueue it."""

from __future__ import annotations

import uuid

from shared.domain.models import Principal, ProcessMessage, ProcessRequest
from shared.domain.public import ProcessAccepted, ProcessSkipped
from shared.errors import NotFound, StatusLocked
from shared.ports import MessageQueue, TicketRepository
from shared.services.agent import ACTIONABLE, Queues
from shared.services.throttle import Quota, Throttle

SNAPSHOT_LIMIT = 24 * 1024  # bytes of ticket JSON carried in a message (queue messages hold 64 KiB)


class ProcessService:
    """`POST /tickets/{id}/process/`: check, throttle, enqueue. Three storage round trips."""

    def __init__(
        self, tickets: TicketRepository, queue: MessageQueue, throttle: Throttle, queues: Queues
    ) -> None:
        self._tickets, self._queue, self._throttle, self._queues = tickets, queue, throttle, queues

    def request(
        self, caller: Principal, ticket_id: int, body: ProcessRequest
    ) -> tuple[ProcessAccepted | ProcessSkipped, Quota | None]:
        """Raises NotFound, StatusLocked (a ticket people hold), Throttled. A user's `force` is
        ignored (the web client sends it on every "Analyze Now"): only staff force."""
        ticket = self._tickets.get(ticket_id)
        if ticket is None or not caller.can_see(ticket):
            raise NotFound(f"Ticket {ticket_id} was not found.")
        if body.force and not caller.is_staff:
            body = body.model_copy(update={"force": False})
        if ticket.agent_processed and not body.force:
            return ProcessSkipped(ticket_id=ticket_id, detail="The agent already processed it."), None
        if ticket.status not in ACTIONABLE and not body.force:
            raise StatusLocked(
                f"Ticket {ticket_id} is {ticket.status.value}: people are handling it, "
                "so the agent will not act on it."
            )
        quota = self._throttle.hit(caller.sub)
        message = ProcessMessage(
            ticket_id=ticket_id,
            request_id=uuid.uuid4().hex,
            requested_by=caller.sub,
            force=body.force,
            ticket_version=ticket.version,
        )
        with_snapshot = message.model_copy(update={"ticket": ticket})
        if len(with_snapshot.model_dump_json().encode()) <= SNAPSHOT_LIMIT:
            message = with_snapshot
        self._queue.send(self._queues.agent, message)
        return ProcessAccepted(ticket_id=ticket_id, request_id=message.request_id), quota
