"""Tickets: create, list, read, human status change (`/api/tickets/...`)."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import Field, StringConstraints

from functions.http import Call, Query, api, json_response
from shared.domain.feedback import ResolutionFeedback
from shared.domain.models import Priority, StatusChange, StatusIn, TicketCreate
from shared.domain.public import (
    FeedbackRecorded,
    HistoryPage,
    RollbackResult,
    TicketPage,
    TicketPublic,
    WebTicketList,
)
from shared.domain.rollback import RollbackRequest
from shared.storage.keys import QUEUE_CURSOR

bp = func.Blueprint()

Cursor = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]


class HistoryQuery(Query):
    limit: int = Field(20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(pattern=r"^h\d{12}$")] | None = None


class ListQuery(Query):
    """Filters name a work queue (status; status and assigned_team; status and priority; a user's
    own by status): any other combination is a 400 naming those. The cursor is the next_cursor of
    the same list: digits for the unfiltered lists, opaque for a queue."""

    status: StatusIn | None = None
    assigned_team: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    priority: Priority | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(pattern=QUEUE_CURSOR)] | None = None
    mine: bool = False


@api(
    bp,
    "tickets_create",
    "tickets",
    "POST",
    access="user",
    body=TicketCreate,
    status=201,
    response=TicketPublic,
)
def tickets_create(call: Call) -> func.HttpResponse:
    """POST /api/tickets/"""
    ticket, quota = call.container.ticket_service.create_counted(call.caller, call.body(TicketCreate))
    return json_response(ticket, 201, quota.headers() if quota else None)


def _list(call: Call) -> TicketPage:
    q = call.query(ListQuery)
    return call.container.ticket_service.list(
        call.caller, q.status, q.limit, q.cursor, q.mine, q.assigned_team, q.priority
    )


@api(bp, "tickets_list", "tickets", "GET", access="user", query=ListQuery, response=TicketPage)
def tickets_list(call: Call) -> func.HttpResponse:
    """GET /api/tickets/"""
    return json_response(_list(call))


@api(bp, "tickets_list_alias", "tickets/list", "GET", access="user", query=ListQuery, response=WebTicketList)
def tickets_list_alias(call: Call) -> func.HttpResponse:
    """GET /api/tickets/list/ — the same page as the web client's bare array (`X-Next-Cursor`)."""
    page = _list(call)
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None
    return json_response([t.model_dump(mode="json") for t in page.results], 200, headers)


@api(bp, "tickets_get", "tickets/{id:int}", "GET", access="user", response=TicketPublic)
def tickets_get(call: Call) -> func.HttpResponse:
    """GET /api/tickets/{id}/"""
    return json_response(call.container.ticket_service.get(call.caller, call.route_int("id")))


@api(
    bp,
    "tickets_status",
    "tickets/{id:int}/status",
    "POST",
    access="user",
    body=StatusChange,
    response=TicketPublic,
)
def tickets_status(call: Call) -> func.HttpResponse:
    """POST /api/tickets/{id}/status/ — staff; an owner may only close their own ticket."""
    change = call.body(StatusChange)
    return json_response(
        call.container.ticket_service.change_status(call.caller, call.route_int("id"), change)
    )


@api(
    bp,
    "tickets_history",
    "tickets/{id:int}/action-history",
    "GET",
    access="user",
    query=HistoryQuery,
    response=HistoryPage,
)
def tickets_history(call: Call) -> func.HttpResponse:
    """GET /api/tickets/{id}/action-history/ — owner or staff, newest first."""
    q = call.query(HistoryQuery)
    return json_response(
        call.container.ticket_service.history(call.caller, call.route_int("id"), q.limit, q.cursor)
    )


@api(
    bp,
    "tickets_resolution_feedback",
    "tickets/{id:int}/resolution-feedback",
    "POST",
    access="user",
    body=ResolutionFeedback,
    response=FeedbackRecorded,
)
def tickets_resolution_feedback(call: Call) -> func.HttpResponse:
    """POST /api/tickets/{id}/resolution-feedback/ — owner or staff: did the fix hold?"""
    answer = call.body(ResolutionFeedback)
    return json_response(call.container.feedback_service.answer(call.caller, call.route_int("id"), answer))


@api(
    bp,
    "tickets_action_rollback",
    "tickets/actions/{action_id}/rollback",
    "POST",
    access="admin",
    body=RollbackRequest,
    response=RollbackResult,
)
def tickets_action_rollback(call: Call) -> func.HttpResponse:
    """POST /api/tickets/actions/{action_id}/rollback/ (admin) — undo an autonomous action."""
    body = call.body(RollbackRequest, optional=True)
    action_id = call.req.route_params["action_id"]
    result, quota = call.container.rollback_service.rollback(call.caller, action_id, body)
    return json_response(result, 200, quota.headers())
