"""Tickets: create, list, read, human status change (`/api/tickets/...`)."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.http import Call, endpoint, json_response
from shared.domain.models import Status, StatusChange, TicketCreate

bp = func.Blueprint()

Cursor = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(pattern=r"^h\d{12}$")] | None = None


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None
    mine: bool = False


@bp.function_name("tickets_create")
@bp.route(route="tickets", methods=["POST"])
@endpoint
def tickets_create(call: Call) -> func.HttpResponse:
    """POST /api/tickets/"""
    caller = call.caller
    ticket = call.container.ticket_service.create(caller, call.body(TicketCreate))
    return json_response(ticket, 201)


def _list(call: Call) -> func.HttpResponse:
    caller = call.caller
    q = call.query(ListQuery)
    page = call.container.ticket_service.list(caller, q.status, q.limit, q.cursor, q.mine)
    return json_response(page)


@bp.function_name("tickets_list")
@bp.route(route="tickets", methods=["GET"])
@endpoint
def tickets_list(call: Call) -> func.HttpResponse:
    """GET /api/tickets/"""
    return _list(call)


@bp.function_name("tickets_list_alias")
@bp.route(route="tickets/list", methods=["GET"])
@endpoint
def tickets_list_alias(call: Call) -> func.HttpResponse:
    """GET /api/tickets/list/"""
    return _list(call)


@bp.function_name("tickets_get")
@bp.route(route="tickets/{id:int}", methods=["GET"])
@endpoint
def tickets_get(call: Call) -> func.HttpResponse:
    """GET /api/tickets/{id}/"""
    return json_response(call.container.ticket_service.get(call.caller, call.route_int("id")))


@bp.function_name("tickets_status")
@bp.route(route="tickets/{id:int}/status", methods=["POST"])
@endpoint
def tickets_status(call: Call) -> func.HttpResponse:
    """POST /api/tickets/{id}/status/ (staff)"""
    caller = call.caller
    change = call.body(StatusChange)
    ticket = call.container.ticket_service.change_status(caller, call.route_int("id"), change)
    return json_response(ticket)


@bp.function_name("tickets_history")
@bp.route(route="tickets/{id:int}/action-history", methods=["GET"])
@endpoint
def tickets_history(call: Call) -> func.HttpResponse:
    """GET /api/tickets/{id}/action-history/ — owner or staff, newest first."""
    caller = call.caller
    q = call.query(HistoryQuery)
    return json_response(
        call.container.ticket_service.history(caller, call.route_int("id"), q.limit, q.cursor)
    )
