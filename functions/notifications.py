"""In-app notifications: `GET /api/notifications/`, and the web client's `/api/auth/notifications/`."""

from __future__ import annotations

from typing import Annotated, Literal

import azure.functions as func
from pydantic import Field, StringConstraints

from functions.http import Call, Query, api, json_response
from shared.domain.public import NotificationPage, WebNotification, WebNotifications
from shared.storage.keys import NOTIFICATION_CURSOR

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
    return json_response([WebNotification.of(n).model_dump(mode="json") for n in page.results], 200, headers)
