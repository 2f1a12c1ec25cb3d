"""In-app notifications: `GET /api/notifications/`, and the web client's `/api/auth/notifications/`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import azure.functions as func
from pydantic import Field, StringConstraints

from functions.http import Call, Query, api, json_response
from shared.domain.public import MarkedRead, NotificationPage, WebNotification, WebNotifications
from shared.errors import NotFound
from shared.storage.keys import NOTIFICATION_CURSOR, notification_row

bp = func.Blueprint()


class NotificationQuery(Query):
    limit: int = Field(20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(pattern=NOTIFICATION_CURSOR)] | None = None
    scope: Literal["mine", "staff"] = "mine"


def _page(call: Call) -> NotificationPage:
    q = call.query(NotificationQuery)
    return call.container.notification_service.list(call.caller, q.scope == "staff", q.limit, q.cursor)


@api(
    bp,
    "notifications_list",
    "notifications",
    "GET",
    access="user",
    query=NotificationQuery,
    response=NotificationPage,
)
def notifications_list(call: Call) -> func.HttpResponse:
    """GET /api/notifications/ — the caller's own, newest first; staff: `?scope=staff`."""
    return json_response(_page(call))


@api(
    bp,
    "notifications_list_web",
    "auth/notifications",
    "GET",
    access="user",
    query=NotificationQuery,
    response=WebNotifications,
)
def notifications_list_web(call: Call) -> func.HttpResponse:
    """GET /api/auth/notifications/ — the same, as the web client's bare array (`X-Next-Cursor`)."""
    page = _page(call)
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None
    # The web id is the notification's key, so marking it read is one write (`.../{id}/read/`).
    shown = [
        WebNotification.of(n).model_copy(update={"id": notification_row(n.created_at, n.id)})
        for n in page.results
    ]
    return json_response([n.model_dump(mode="json") for n in shown], 200, headers)


@api(
    bp,
    "notifications_mark_read",
    "auth/notifications/{key}/read",
    "PATCH",
    access="user",
    response=MarkedRead,
)
def notifications_mark_read(call: Call) -> func.HttpResponse:
    """PATCH /api/auth/notifications/{id}/read/ — one of the caller's own notifications is read."""
    key = call.req.route_params["key"]
    if not re.fullmatch(NOTIFICATION_CURSOR, key):
        raise NotFound("That notification was not found.")
    return json_response(call.container.notification_service.mark_read(call.caller, key))


@api(bp, "notifications_read_all", "auth/notifications/read-all", "POST", access="user", response=MarkedRead)
def notifications_read_all(call: Call) -> func.HttpResponse:
    """POST /api/auth/notifications/read-all/ — the caller's newest 100 notifications are read."""
    return json_response(call.container.notification_service.mark_all_read(call.caller))
