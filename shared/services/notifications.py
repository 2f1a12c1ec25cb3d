"""Reading in-app notifications: the caller's own, or (staff) the staff-wide notices."""

from __future__ import annotations

from shared.domain.models import Principal
from shared.domain.public import MarkedRead, NotificationPage, NotificationPublic
from shared.errors import Forbidden, NotFound
from shared.ports import NotificationStore

READ_ALL_LIMIT = 100  # one page of the list (`?limit=` is at most 100) and one entity-group batch


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

    def mark_read(self, caller: Principal, key: str) -> MarkedRead:
        """Mark one of the caller's notifications read; NotFound when the caller has none with
        that key (another user's key is looked for in the caller's own notifications only)."""
        if not self._notifications.mark_read(caller.sub, key):
            raise NotFound("That notification was not found.")
        return MarkedRead(marked=1)

    def mark_all_read(self, caller: Principal) -> MarkedRead:
        """Mark the caller's newest READ_ALL_LIMIT notifications read: one read and one write,
        whatever the caller has. The bell shows a first page of at most that many."""
        return MarkedRead(marked=self._notifications.mark_all_read(caller.sub, READ_ALL_LIMIT))
