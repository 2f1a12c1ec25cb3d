"""Creating, reading, listing tickets and human status changes."""

from __future__ import annotations

import re

from shared.domain import changes
from shared.domain.models import (
    Principal,
    Priority,
    Status,
    StatusChange,
    Ticket,
    TicketCreate,
    storable,
)
from shared.domain.public import HistoryEntryPublic, HistoryPage, TicketPage, TicketPublic
from shared.domain.queues import Queue
from shared.errors import ConcurrencyConflict, Conflict, Forbidden, NotFound, ValidationFailed
from shared.ports import MAX_OWNER_KEY, Clock, QuotaExceeded, TicketRepository, WindowLimit, WindowUsage
from shared.services.throttle import Quota, throttled

MAX_RETRIES = 5
SUPPORTED = "status; status and assigned_team; status and priority"


class TicketService:
    """Tickets and pages come back as the API shows them (shared/domain/public.py)."""

    def __init__(
        self, tickets: TicketRepository, clock: Clock, create_limit: WindowLimit | None = None
    ) -> None:
        self.tickets = tickets
        self.clock = clock
        self.create_limit = create_limit

    def create(self, caller: Principal, data: TicketCreate) -> TicketPublic:
        """A new ticket owned by the caller, status `new`. Raises ValidationFailed, Throttled."""
        return self.create_counted(caller, data)[0]

    def create_counted(self, caller: Principal, data: TicketCreate) -> tuple[TicketPublic, Quota | None]:
        """`create`, with what is left of the caller's creation quota (None when unthrottled).

        A refused request writes nothing: the caller's id must be storable, and the repository
        counts the create in the caller's window atomically with its first write."""
        _check_owner(self.tickets, caller.sub)
        if data.user is not None and data.user != caller.sub:
            # Nobody files a ticket in another's name, staff included: it would land in their list.
            raise ValidationFailed(
                "A ticket can only be created for yourself.",
                [{"loc": "user", "msg": "Must be your own user id, or left out."}],
            )
        now = self.clock()
        ticket = Ticket(
            id=self.tickets.next_id(),
            issue_type=data.issue_type,
            description=data.description,
            category=data.category,
            tags=list(data.tags),
            status=Status.NEW,
            user=caller.sub,
            created_at=now,
            updated_at=now,
        )
        try:
            usage = self.tickets.add(ticket, self.create_limit)
        except QuotaExceeded as exceeded:
            assert self.create_limit is not None
            raise throttled(_quota(exceeded.usage), "new tickets", self.create_limit.per) from None
        quota = _quota(usage) if usage else None
        return ticket.public(), quota

    def get(self, caller: Principal, ticket_id: int) -> TicketPublic:
        """The ticket, if the caller may see it; NotFound otherwise (existence is not leaked)."""
        return self._visible(caller, ticket_id).public()

    def _visible(self, caller: Principal, ticket_id: int) -> Ticket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or not caller.can_see(ticket):
            raise NotFound(f"Ticket {ticket_id} was not found.")
        return ticket

    def list(
        self,
        caller: Principal,
        status: Status | None,
        limit: int,
        cursor: str | None,
        mine: bool,
        assigned_team: str | None = None,
        priority: Priority | None = None,
    ) -> TicketPage:
        """Staff see every ticket unless they ask for their own; users only ever see theirs.

        Filtered, a list is a work queue (shared/domain/queues.py): staff by status, status and
        team, or status and priority; a user (or staff asking for their own) by status. Other
        combinations are refused (ValidationFailed), as is a cursor the list did not give out."""
        own = not caller.is_staff or mine
        queue = queue_for(status, assigned_team, priority, caller.sub if own else None)
        if queue is not None:
            page = self.tickets.list_queue(queue, limit, cursor)
        elif cursor is not None and not re.fullmatch(r"\d{12}", cursor):
            raise ValidationFailed(
                "The cursor is not one this list gave out.",
                [{"loc": "cursor", "msg": "Use the next_cursor of the same list, unchanged."}],
            )
        elif own:
            page = self.tickets.list_for_owner(caller.sub, None, limit, cursor)
        else:
            page = self.tickets.list_all(None, limit, cursor)
        return TicketPage(results=[t.public() for t in page.results], next_cursor=page.next_cursor)

    def history(self, caller: Principal, ticket_id: int, limit: int, cursor: str | None) -> HistoryPage:
        """A ticket's action history, newest first. Every change after creation adds one entry."""
        ticket = self._visible(caller, ticket_id)
        page = self.tickets.history(ticket_id, limit, cursor)
        return HistoryPage(
            ticket_id=ticket_id,
            total_actions=ticket.version - 1,
            action_history=[HistoryEntryPublic.of(e) for e in page.results],
            next_cursor=page.next_cursor,
        )

    def change_status(self, caller: Principal, ticket_id: int, change: StatusChange) -> TicketPublic:
        """A human change, recorded in the ticket's history: staff change anything; a user only
        closes their own ticket (changes.owner_may). Raises NotFound (not the caller's ticket),
        Forbidden (a user asking for more than closing), Conflict."""
        for _ in range(MAX_RETRIES):
            ticket = self._visible(caller, ticket_id)
            if not caller.is_staff and not changes.owner_may(change):
                raise Forbidden("You can close your own ticket; only staff can change it otherwise.")
            changed, entry = changes.change_status(ticket, change, caller.sub, self.clock())
            try:
                self.tickets.save(changed, [entry])
                return changed.public()
            except ConcurrencyConflict:
                continue
        raise Conflict("The ticket is being changed by someone else; try again.")


def _quota(usage: WindowUsage) -> Quota:
    return Quota(usage.limit, usage.limit - usage.used, usage.reset_at)


def _check_owner(tickets: TicketRepository, user: str) -> None:
    """The caller's id becomes a key of the owner index (percent-encoded) and part of the ticket."""
    try:
        storable(user)
    except ValueError as exc:
        raise ValidationFailed("Your user id cannot be stored.", [{"loc": "user", "msg": str(exc)}]) from None
    if not tickets.owner_fits(user):
        raise ValidationFailed(
            "Your user id is too long to be stored.",
            [{"loc": "user", "msg": f"At most {MAX_OWNER_KEY} characters once percent-encoded."}],
        )


def queue_for(
    status: Status | None, assigned_team: str | None, priority: Priority | None, owner: str | None
) -> Queue | None:
    """The queue a list filter names; None for no filter (every ticket, or all of the owner's).
    Raises ValidationFailed for a combination no index keeps."""
    if status is None and assigned_team is None and priority is None:
        return None
    if status is None:
        raise ValidationFailed(
            f"assigned_team and priority filter a status; the lists kept are by {SUPPORTED}.",
            [{"loc": "status", "msg": "Required with assigned_team or priority."}],
        )
    if owner is not None and (assigned_team is not None or priority is not None):
        raise ValidationFailed(
            "Your own tickets are listed by status only.",
            [{"loc": "assigned_team" if assigned_team is not None else "priority", "msg": "Staff only."}],
        )
    if assigned_team is not None and priority is not None:
        raise ValidationFailed(
            f"Filter by one of assigned_team or priority; the lists kept are by {SUPPORTED}.",
            [{"loc": "priority", "msg": "Not with assigned_team."}],
        )
    return Queue(status=status, assigned_team=assigned_team, priority=priority, owner=owner)
