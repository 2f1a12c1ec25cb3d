"""Key layout shared by the Table adapters and the fakes' cursors.

Tickets live in partition `ticket_key(id)`; keys count down so that a plain ascending
scan returns the newest ticket first. Inside a partition: the ticket row, one history
entry per committed change (also counting down, newest first; inserting the entry of a
new version is the guard of every transaction) and one record per process request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

_TOP = 10**12
_MICROSECOND = timedelta(microseconds=1)
TICKET_ROW = "ticket"


def ticket_key(ticket_id: int) -> str:
    return f"{_TOP - ticket_id:012d}"


def ticket_id_of(key: str) -> int:
    return _TOP - int(key)


def history_row(seq: int) -> str:
    return f"h{_TOP - seq:012d}"


def seq_of(row: str) -> int:
    return _TOP - int(row[1:])


def request_row(request_id: str) -> str:
    return f"r{request_id}"


def owner_key(owner: str) -> str:
    """Table keys refuse / \\ # ? and control characters; percent-encode them."""
    return quote(owner, safe=" @.-_+~=:;,!$&'()*")


CREATE_MARKERS = "~create-"  # after every ticket key ("~" sorts after digits)


def create_marker_row(window: int, place: int) -> str:
    """The marker of a ticket create taking `place` (1..limit) of its owner's fixed window, in the
    owner's partition."""
    return f"{CREATE_MARKERS}{window:012d}-{place:09d}"


# Notifications: one partition per recipient, keyed by `owner_key`, and one for the staff-wide
# notices. `owner_key` never writes "[" (it is not in its safe set: a user id "[staff]" becomes
# "%5Bstaff%5D"), so no user id can map to the staff partition.
STAFF_NOTICES = "[staff]"
_NOTICE_TOP = 10**17  # microseconds since the epoch, inverted: newest first until the year 5138
NOTIFICATION_CURSOR = r"^\d{17}-[A-Za-z0-9_-]{1,100}$"  # a notification_row


def notification_partition(user: str | None) -> str:
    return STAFF_NOTICES if user is None else owner_key(user)


def notification_row(created_at: datetime, notification_id: str) -> str:
    """Newest first, then by id; the same notification always gets the same row."""
    at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // _MICROSECOND
    if not 0 <= micros < _NOTICE_TOP:
        raise ValueError(f"a notification cannot be dated {created_at.isoformat()}")
    return f"{_NOTICE_TOP - 1 - micros:017d}-{notification_id}"
