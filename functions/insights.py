"""The web client's agent panels: agent status, similar tickets, the agent's recommendations."""

from __future__ import annotations

import azure.functions as func

from functions.http import Call, api, json_response
from shared.domain.public import AgentRecommendations, AgentStatus, AiSuggestions

bp = func.Blueprint()


@api(bp, "tickets_agent_status", "tickets/{id:int}/agent-status", "GET", access="user", response=AgentStatus)
def tickets_agent_status(call: Call) -> func.HttpResponse:
    """GET /api/tickets/{id}/agent-status/ — owner or staff: the agent's last analysis."""
    return json_response(call.container.insight_service.agent_status(call.caller, call.route_int("id")))


@api(
    bp,
    "tickets_ai_suggestions",
    "tickets/{id:int}/ai-suggestions",
    "GET",
    access="user",
    response=AiSuggestions,
)
def tickets_ai_suggestions(call: Call) -> func.HttpResponse:
    """GET /api/tickets/{id}/ai-suggestions/ — owner or staff: the visible tickets most like it."""
    return json_response(call.container.insight_service.suggestions(call.caller, call.route_int("id")))


@api(
    bp,
    "tickets_agent_recommendations",
    "tickets/agent/recommendations",
    "GET",
    access="staff",
    response=AgentRecommendations,
)
def tickets_agent_recommendations(call: Call) -> func.HttpResponse:
    """GET /api/tickets/agent/recommendations/ — staff: what the agent would have done on deferred tickets."""
    found = call.container.insight_service.recommendations()
    return json_response([r.model_dump(mode="json") for r in found])
