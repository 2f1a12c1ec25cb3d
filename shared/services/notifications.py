"""Reading in-app notifications: the caller's own, or (staff) the staff-wide notices."""

from __future__ import annotations

from shared.domain.models import Principal
from shared.domain.public import NotificationPage, NotificationPublic
from shared.errors import Forbidden
from shared.ports import NotificationStore


class NotificationService:
    def __init__(self, notifications: NotificationStore) -> None:
        self._notifications = notifications

    def list(self, caller: Principal, staff: bool, limit: int, cursor: str | None) -> NotificationPage:
        """The caller's notifications, newest first; with `staff`, the notices to all staff
        instead (staff only: Forbidden otherwise). Nobody reads another user's."""
        if staff and not caller.is_staff:
            raise Forbidden("Only staff can read the staff notices.")
        page = self._notifications.list(None if staff else caller.sub, limit, cursor)
        return NotificationPage(
            results=[NotificationPublic.of(n) for n in page.results], next_cursor=page.next_cursor
        )
