"""Key layout shared by the Table adapters and the fakes' cursors.

Tickets live in partition `ticket_key(id)`; keys count down so that a plain ascending
scan returns the newest ticket first. Inside a partition: the ticket row, one history
entry per committed change (also counting down, newest first; inserting the entry of a
new version is the guard of every transaction) and one record per process request.
"""

from __future__ import annotations

from urllib.parse import quote

_TOP = 10**12
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
