"""One-click answers: the follow-up's signed "Yes, it works" / "No, still broken" links, and what
opening (GET: look, change nothing) and using (POST: answer, once) one does.

An answer through a link is an answer through FeedbackService, as the ticket's owner, with the
link's single-use record (keyed by its nonce) committed in the answer's own transaction. A link
is refused before storage is read when it is not exactly as signed (400) or expired (410); with
the ticket read, when its answer was taken before (410) or its resolution is no longer the one
it was sent for: rolled back, replaced by a later auto-resolution, or the ticket changed owner
(410).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain import links
from shared.domain.feedback import ResolutionFeedback
from shared.domain.links import LinkClaims
from shared.domain.models import ActionType, HistoryEntry, ResolutionOutcome, Ticket
from shared.domain.public import FeedbackRecorded
from shared.errors import AppError
from shared.ports import Clock, TicketRepository
from shared.services.feedback import FeedbackService, OnceAnswer

HISTORY_PAGE = 100
ANSWER_NAMES = {True: "yes", False: "no"}


class LinkInvalid(AppError):
    status, code, title = 400, "link_invalid", "Invalid link"


class LinkGone(AppError):
    status, code, title = 410, "link_gone", "Link no longer valid"


class LinkUsed(LinkGone):
    code = "link_used"


class LinkExpired(LinkGone):
    code = "link_expired"


class LinkVoid(LinkGone):
    code = "link_void"


@dataclass(frozen=True)
class LinkSettings:
    keys: tuple[bytes, ...]  # FEEDBACK_LINK_SECRET first (it signs), then the previous one
    base_url: str  # PUBLIC_BASE_URL, without a trailing slash
    window_seconds: int  # FEEDBACK_WINDOW_SECONDS: a link expires when the window ends


@dataclass(frozen=True)
class LinkView:
    """What a valid, unused link would do, for its page."""

    ticket_id: int
    answer: bool
    expires_at: datetime


def url_path(token: str) -> str:
    return f"/api/feedback/{token}/"


def answer_links(
    settings: LinkSettings, ticket: Ticket, action_seq: int, resolved_at: datetime
) -> dict[str, str]:
    """`{"yes": url, "no": url}` for the follow-up of the auto-resolution at `action_seq`, made at
    `resolved_at`: the same URLs on every delivery of that follow-up (its notification is written
    again unchanged), valid until the feedback window ends."""
    key = settings.keys[0]
    expires = int((resolved_at + timedelta(seconds=settings.window_seconds)).timestamp())
    made = {}
    for answer, name in ANSWER_NAMES.items():
        claims = LinkClaims(
            ticket_id=ticket.id,
            action_seq=action_seq,
            answer=answer,
            expires=expires,
            nonce=links.link_nonce(key, ticket.id, action_seq, answer),
            owner_digest=links.owner_digest(ticket.user),
        )
        made[name] = settings.base_url + url_path(links.sign(claims, key))
    return made


class LinkService:
    def __init__(
        self, tickets: TicketRepository, feedback: FeedbackService, clock: Clock, settings: LinkSettings
    ) -> None:
        if not settings.keys or not all(settings.keys):
            raise ValueError("one-click links need a signing key")
        self._tickets, self._feedback, self._clock, self._settings = tickets, feedback, clock, settings

    def view(self, token: str) -> LinkView:
        """What the link would record, reading only: raises LinkInvalid or a LinkGone (used,
        expired, void) exactly as using it would, so its page says so before the user types."""
        claims = self._claims(token)
        ticket, record = self._tickets.get_with_request(claims.ticket_id, claims.once_key)
        if record is not None:
            raise _used()
        if ticket is None:
            raise LinkVoid("This link's ticket no longer exists.")
        self._check(claims, ticket)
        return LinkView(claims.ticket_id, claims.answer, claims.expires_at)

    def answer(self, token: str, score: int | None, text: str) -> FeedbackRecorded:
        """Record the link's answer, with the optional stars and text, once, as the owner."""
        claims = self._claims(token)
        feedback = ResolutionFeedback(
            resolution_confirmed=claims.answer, satisfaction_score=score, feedback_text=text
        )
        once = OnceAnswer(claims.once_key, _used(), lambda ticket: self._check(claims, ticket))
        return self._feedback.answer(None, claims.ticket_id, feedback, once)

    def _claims(self, token: str) -> LinkClaims:
        try:
            return links.verify(token, self._settings.keys, self._clock())
        except links.LinkRefused:
            raise LinkInvalid(
                "This link is not valid: it may have been cut short or changed. "
                "Open the link from the message again, or answer in the app."
            ) from None
        except links.LinkExpired:
            raise LinkExpired(
                "This link has expired: the time to answer through it has passed. "
                "You can still answer on the ticket in the app."
            ) from None

    def _check(self, claims: LinkClaims, ticket: Ticket) -> None:
        """Refuse (LinkVoid) a ticket whose resolution is not the one the link was sent for."""
        resolution = ticket.resolution
        if not claims.owned_by(ticket.user) or ticket.version < claims.action_seq:
            raise _void()
        if resolution is None or resolution.outcome == ResolutionOutcome.VOIDED:
            raise _void()
        for entry in self._since(ticket, claims.action_seq):
            if entry.seq == claims.action_seq and (
                entry.action_type != ActionType.AUTO_RESOLVE or entry.rolled_back
            ):
                raise _void()
            if entry.seq > claims.action_seq and entry.action_type == ActionType.AUTO_RESOLVE:
                raise _void()  # a later auto-resolution made the current resolution

    def _since(self, ticket: Ticket, seq: int) -> list[HistoryEntry]:
        """The history entries from `seq` to the ticket's version, newest first (one read on the
        common path: the auto-resolution, its follow-up, an answer or two)."""
        found: list[HistoryEntry] = []
        cursor = None
        while True:
            page = self._tickets.history(ticket.id, min(HISTORY_PAGE, ticket.version - seq + 1), cursor)
            for entry in page.results:
                if entry.seq < seq:
                    return found
                found.append(entry)
            if page.next_cursor is None or (found and found[-1].seq == seq):
                return found
            cursor = page.next_cursor


def _used() -> LinkUsed:
    return LinkUsed("This link was used already: your answer is recorded. It cannot be used twice.")


def _void() -> LinkVoid:
    return LinkVoid(
        "This link no longer applies: the fix it asks about was undone or replaced. "
        "Open the ticket in the app to see where it stands."
    )
