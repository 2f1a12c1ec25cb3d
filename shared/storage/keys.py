"""Key layout shared by the Table adapters and the fakes' cursors.

Tickets live in partition `ticket_key(id)`; keys count down so that a plain ascending
scan returns the newest ticket first. Inside a partition: the ticket row, one history
entry per committed change (also counting down, newest first; inserting the entry of a
new version is the guard of every transaction) and one record per process request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
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


# Work queues (the `ticketqueues` table, shared/storage/tables/queues.py): one partition per
# status, spread over shards for the statuses every ticket passes through; a ticket's shard is
# picked by its owner, so all of a ticket's entries of one status share one partition (one batch
# writes them) and a user's list by status reads one partition. Rows:
# `{kind}|{value}|{ticket_key}|{version}`, kind s (status), t (team), p (priority), o (owner).
QUEUE_SHARDS = {"new": 8, "resolved": 4, "closed": 4}
QUEUE_CURSOR = r"^[A-Za-z0-9_-]{1,1400}$"
_QUEUE_ROW = re.compile(r"^(?P<prefix>[stpo]\|[^|]*\|)(?P<ticket>\d{12})\|(?P<version>\d{10})$")


def _shard(owner: str, shards: int) -> int:
    return zlib.crc32(owner.encode()) % shards


def queue_partitions(status: str, owner: str | None) -> list[str]:
    """The partitions holding a status's queue: all its shards, or the owner's one."""
    shards = QUEUE_SHARDS.get(status, 1)
    if shards == 1:
        return [status]
    if owner is not None:
        return [f"{status}-{_shard(owner, shards)}"]
    return [f"{status}-{shard}" for shard in range(shards)]


def team_part(team: str) -> str:
    """A team name as a key part: percent-encoded (no "|" or key-refused character survives); a
    name too long for a key by its digest ("%h" is no percent-encoding, so no name collides)."""
    encoded = quote(team, safe="")
    return encoded if len(encoded) <= 200 else "%h" + hashlib.sha256(team.encode()).hexdigest()


def owner_part(owner: str) -> str:
    """An owner as a queue key part: a digest, as an owner key may fill a whole key (the reader
    checks each ticket's owner, so even a collision would show nobody another's ticket)."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def queue_prefix(kind: str, value: str) -> str:
    return f"{kind}|{value}|"


def queue_row(prefix: str, ticket_id: int, version: int) -> str:
    return f"{prefix}{ticket_key(ticket_id)}|{version:010d}"


def parse_queue_row(row: str) -> tuple[str, int, int] | None:
    """(prefix, ticket id, version) of a queue row; None for anything else."""
    found = _QUEUE_ROW.match(row)
    if not found:
        return None
    return found["prefix"], ticket_id_of(found["ticket"]), int(found["version"])


def queue_cursor(queue_id: str, last_ticket: int) -> str:
    """Opaque: the queue it belongs to and the last ticket shown. Rows sort by ticket (newest
    first) in every shard, so that one position is each shard's position."""
    raw = json.dumps([queue_id, ticket_key(last_ticket)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def queue_cursor_position(queue_id: str, cursor: str) -> str | None:
    """The ticket key a cursor of `queue_id` continues after; None for a cursor that is not one
    this queue gave out (tampered, or of another list)."""
    if not re.fullmatch(QUEUE_CURSOR, cursor):
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and value[0] == queue_id
        and isinstance(value[1], str)
        and re.fullmatch(r"\d{12}", value[1])
    ):
        return value[1]
    return None
