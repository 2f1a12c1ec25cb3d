"""What the web client's agent panels read: a ticket's agent status, similar tickets, and (staff)
what the agent would have done on the tickets it left to people."""

from __future__ import annotations

from shared.domain.models import ActionType, HistoryEntry, Principal, Status, Ticket
from shared.domain.public import (
    AgentStatus,
    AiSuggestions,
    Recommendation,
    SimilarTicket,
    TicketRecommendations,
)
from shared.errors import NotFound
from shared.ports import SimilarTickets, TicketRepository

SIMILAR_LIMIT = 5  # webapp-calls.md: at most 5
SIMILAR_POOL = 50  # the caller's newest tickets (staff: anyone's) compared with it
RECENT_TICKETS = 100  # recommendations look at the newest tickets only: one query (see README)
MAX_RECOMMENDATIONS = 20
MAX_HISTORY_READS = 40  # one single-partition read per candidate, at most this many per call

_WOULD = {
    ActionType.AUTO_RESOLVE: "resolved it",
    ActionType.SCHEDULE_FOLLOWUP: "sent a fix and followed up",
    ActionType.ESCALATE: "escalated it",
    ActionType.ASSIGN_TO_TEAM: "assigned it to a team",
    ActionType.REQUEST_CLARIFICATION: "asked the owner for details",
}
_MESSAGE_MAX = 1000


class InsightService:
    def __init__(self, tickets: TicketRepository, matcher: SimilarTickets, confidence_high: float) -> None:
        self._tickets, self._matcher, self._high = tickets, matcher, confidence_high

    def _visible(self, caller: Principal, ticket_id: int) -> Ticket:
        ticket = self._tickets.get(ticket_id)
        if ticket is None or not caller.can_see(ticket):
            raise NotFound(f"Ticket {ticket_id} was not found.")
        return ticket

    def agent_status(self, caller: Principal, ticket_id: int) -> AgentStatus:
        """The ticket's last analysis (`agent`), if the caller may see it. One read."""
        return AgentStatus.of(self._visible(caller, ticket_id).public())

    def suggestions(self, caller: Principal, ticket_id: int) -> AiSuggestions:
        """The tickets most like this one among those the caller may see: a user's own newest
        SIMILAR_POOL (their index, never anyone else's), staff's newest SIMILAR_POOL of all."""
        ticket = self._visible(caller, ticket_id)
        if caller.is_staff:
            pool = self._tickets.list_all(None, SIMILAR_POOL, None).results
        else:
            pool = self._tickets.list_for_owner(caller.sub, None, SIMILAR_POOL, None).results
        visible = [t for t in pool if caller.can_see(t)]
        similar = self._matcher.similar(ticket.public(), [t.public() for t in visible], SIMILAR_LIMIT)
        entries = (ticket.agent or {}).get("knowledge_base_entries") or []
        return AiSuggestions(
            ticket_id=ticket_id,
            similar_tickets=[
                SimilarTicket(
                    ticket_id=t.id,
                    issue_type=t.issue_type,
                    category=t.category.value,
                    status=t.status.value,
                    score=score,
                )
                for t, score in similar
            ],
            knowledge_base_entries=[str(e) for e in entries],
        )

    def recommendations(self) -> list[TicketRecommendations]:
        """(Staff; the route checks.) Among the RECENT_TICKETS newest tickets, those still waiting
        for people (`new` or `open`) whose newest history entry is the agent standing back: a
        deferral with an analysis (gate, cap, rollout) or a shadow decision. Newest first, with
        what the agent would have done. Bounded: one query, then at most MAX_HISTORY_READS reads
        of one entry each; older deferred tickets need issue #15's index to be found."""
        found: list[TicketRecommendations] = []
        reads = 0
        for ticket in self._tickets.list_all(None, RECENT_TICKETS, None).results:
            if len(found) == MAX_RECOMMENDATIONS or reads == MAX_HISTORY_READS:
                break
            if ticket.status not in (Status.NEW, Status.OPEN) or ticket.version < 2:
                continue
            reads += 1
            newest = self._tickets.history(ticket.id, 1, None).results
            if newest:
                item = self._recommendation(ticket, newest[0])
                if item is not None:
                    found.append(item)
        return found

    def _recommendation(self, ticket: Ticket, entry: HistoryEntry) -> TicketRecommendations | None:
        params = entry.action_params
        if entry.action_type == ActionType.DEFER_TO_HUMAN and params.get("decided_action") and ticket.agent:
            would, because = params["decided_action"], str(params.get("reason") or "deferred")
            agent = ticket.agent
            confidence, reasoning = agent.get("confidence"), str(agent.get("reasoning") or "")
            steps = [str(s) for s in (agent.get("solution") or {}).get("steps") or []]
        elif entry.action_type == ActionType.SHADOW_DECISION and params.get("would_do"):
            would, because = params["would_do"], "shadow_mode"
            confidence, reasoning = entry.confidence_score, entry.agent_reasoning
            steps = []
        else:
            return None
        try:
            action = ActionType(would)
        except ValueError:
            return None
        solves = action in (ActionType.AUTO_RESOLVE, ActionType.SCHEDULE_FOLLOWUP)
        sure = solves and isinstance(confidence, int | float) and confidence >= self._high
        message = f"The agent would have {_WOULD.get(action, action.value)}."
        if steps:
            message += " Steps: " + "; ".join(steps)
        elif reasoning:
            message += " " + reasoning
        return TicketRecommendations(
            ticket_id=ticket.id,
            title=ticket.issue_type,
            created_at=ticket.created_at,
            category=ticket.category.value,
            priority=ticket.priority.value,
            deferred_because=because,
            recommendations=[
                Recommendation(
                    type="high_confidence_solution" if sure else "suggested_solution",
                    message=message[:_MESSAGE_MAX],
                    confidence=float(confidence) if isinstance(confidence, int | float) else None,
                )
            ],
        )
