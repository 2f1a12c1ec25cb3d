"""The autonomous agent: process requests, the queue workers, and the admin controls."""

from __future__ import annotations

import azure.functions as func

from functions.http import Call, api, json_response
from functions.queues import parse, queue_worker
from shared.container import get_container
from shared.domain.models import CheckMessage, ControlsUpdate, ProcessMessage, ProcessRequest
from shared.domain.public import AgentControlsPublic, ProcessAccepted, ProcessSkipped
from shared.storage.names import AGENT_QUEUE, CHECK_QUEUE

bp = func.Blueprint()


@api(
    bp,
    "agent_process",
    "tickets/{id:int}/process",
    "POST",
    access="user",
    body=ProcessRequest,
    status=202,
    response=ProcessAccepted,
    other_responses={200: ProcessSkipped},
)
def agent_process(call: Call) -> func.HttpResponse:
    """POST /api/tickets/{id}/process/ — owner or staff; 202 queued, 200 skipped, 429 throttled."""
    body = call.body(ProcessRequest, optional=True)
    result, quota = call.container.process_service.request(call.caller, call.route_int("id"), body)
    headers = quota.headers() if quota else None
    return json_response(result, 202 if isinstance(result, ProcessAccepted) else 200, headers)


@bp.function_name("agent_run")
@bp.queue_trigger(arg_name="msg", queue_name=AGENT_QUEUE, connection="AzureWebJobsStorage")
@queue_worker("autonomous_agent")
def agent_run(msg: func.QueueMessage) -> None:
    """Queue `agent-actions`: act on one ticket, exactly once."""
    get_container().agent_worker.execute(parse(msg, ProcessMessage))


@bp.function_name("agent_check")
@bp.queue_trigger(arg_name="msg", queue_name=CHECK_QUEUE, connection="AzureWebJobsStorage")
@queue_worker("autonomous_agent")
def agent_check(msg: func.QueueMessage) -> None:
    """Queue `agent-checks`: escalate a scheduled follow-up that is still unresolved."""
    check = parse(msg, CheckMessage)
    get_container().check_service.run(check.ticket_id, check.action_seq, check.due_at)


@api(bp, "agent_controls_get", "agent/controls", "GET", access="admin", response=AgentControlsPublic)
def agent_controls_get(call: Call) -> func.HttpResponse:
    """GET /api/agent/controls/ — admin."""
    return json_response(call.container.controls.show())


@api(
    bp,
    "agent_controls_put",
    "agent/controls",
    "PUT",
    access="admin",
    body=ControlsUpdate,
    response=AgentControlsPublic,
)
def agent_controls_put(call: Call) -> func.HttpResponse:
    """PUT /api/agent/controls/ — admin; any of enabled, mode, rollout_percent, plus a reason."""
    return json_response(call.container.controls.update(call.caller, call.body(ControlsUpdate)))
