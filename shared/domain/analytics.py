"""What each event adds to the analytics tallies (shared/domain/tally.py), as pure functions.

The delta of one event is a function of its history entry alone (and the confidence thresholds):

    delta(entry) = g(after_state) - g(before_state) + h(entry)

- g counts what a ticket in a state contributes: its resolution (on the resolution's day, by
  outcome: voided, confirmed, failed, assumed, reopened, satisfaction...) and the facts that only
  ever become true (`agent_processed`, `done_at`: processed, closed, resolution seconds), those on
  the day of the event looked at, so they land on the event that made them true;
- h counts what the event itself is: an agent decision (its confidence), an autonomous action,
  a deferral, a shadow decision, a rollback, on the event's day.

Because g telescopes, the sum of the deltas of a ticket's events is g of its current state plus
the h of each event: a rollback, a changed answer or an assumed outcome moves the figures by the
difference, and the events can be counted in any order, each once (recording is idempotent by
the event id `{ticket}-{seq}`). `recount` is that sum from scratch: what `manage analytics
recompute` compares the stored tallies with.

A new resolution (a forced re-run that auto-resolves again) replaces the ticket's earlier one: the
earlier one keeps what it counted (it was created, and voided or answered, on its day), so an
AUTO_RESOLVE does not subtract the resolution before it.

Which resolutions count where: every one in `resolutions`; a voided one (its action rolled back)
in `voided` and in nothing else, so outcomes, reopens and satisfaction are those of resolutions
that stand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from shared.domain import tally as t
from shared.domain.actions import AUTONOMOUS
from shared.domain.decision import Thresholds
from shared.domain.models import ActionType, HistoryEntry, Ticket
from shared.domain.tally import Tallies

DECIDING = AUTONOMOUS | {ActionType.DEFER_TO_HUMAN, ActionType.SHADOW_DECISION}
# An event is recorded again (a queue redelivery finding its request done) only while it is at
# most this old; the Table store keeps a folded record's tombstone (which an insert of it again
# conflicts with) for TOMBSTONE_SECONDS after the fold, longer than it may come again.
REPLAY_SECONDS = 30 * 60
TOMBSTONE_SECONDS = 60 * 60


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


def event_id(ticket_id: int, seq: int) -> str:
    """What an event is recorded under: the ticket version it produced (1: the ticket's creation)."""
    return f"{ticket_id}-{seq}"


def level(confidence: float, thresholds: Thresholds) -> str:
    """high | medium | low, by the configured thresholds (those the decision table uses)."""
    if confidence >= thresholds.high:
        return "high"
    return "medium" if confidence >= thresholds.medium else "low"


def _at(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class _Sum:
    def __init__(self) -> None:
        self.tallies: Tallies = {}

    def add(self, day: date, name: str, n: int = 1, sign: int = 1) -> None:
        if n:
            self.tallies.setdefault(day, Counter())[name] += sign * n

    def merge(self, other: Tallies, sign: int = 1) -> None:
        for day, tally in other.items():
            for name, n in tally.items():
                self.add(day, name, n, sign)

    def result(self) -> Tallies:
        return clean(self.tallies)


def clean(tallies: Mapping[date, Mapping[str, int]]) -> Tallies:
    """Without zero counters and empty days (a delta that moved nothing is empty)."""
    out: Tallies = {}
    for day, tally in tallies.items():
        kept = Counter({name: n for name, n in tally.items() if n})
        if kept:
            out[day] = kept
    return out


def _ticket_part(state: Mapping[str, Any], day: date, out: _Sum, sign: int) -> None:
    """The facts of a ticket that only ever become true, on the day of the event looked at."""
    if state.get("agent_processed"):
        out.add(day, t.PROCESSED, 1, sign)
    done_at, created_at = _at(state.get("done_at")), _at(state.get("created_at"))
    if done_at is not None:
        out.add(day, t.CLOSED, 1, sign)
        if created_at is not None:
            seconds = max(0, int((done_at - created_at).total_seconds()))
            out.add(day, t.RESOLUTION_SECONDS, seconds, sign)


def _resolution_part(state: Mapping[str, Any], fallback: date, out: _Sum, sign: int) -> None:
    """The resolution's counters, on the day of the action that created it."""
    resolution = state.get("resolution")
    if not resolution:
        return
    resolved_at = _at(resolution.get("resolved_at"))
    day = day_of(resolved_at) if resolved_at is not None else fallback
    action = str(resolution.get("autonomous_action"))
    out.add(day, t.RESOLUTIONS, 1, sign)
    outcome = resolution.get("outcome")
    if outcome == "voided":
        out.add(day, t.VOIDED, 1, sign)
        return
    out.add(day, t.key(t.RESOLUTIONS_BY, action), 1, sign)
    if outcome == "confirmed":
        out.add(day, t.CONFIRMED, 1, sign)
        out.add(day, t.key(t.CONFIRMED_BY, action), 1, sign)
    elif outcome == "failed":
        out.add(day, t.FAILED, 1, sign)
        out.add(day, t.key(t.FAILED_BY, action), 1, sign)
    elif outcome == "assumed":
        out.add(day, t.ASSUMED, 1, sign)
    if resolution.get("reopened"):
        out.add(day, t.REOPENED, 1, sign)
    score = resolution.get("satisfaction_score")
    if score is not None:
        out.add(day, t.SATISFACTION_SUM, int(score), sign)
        out.add(day, t.SATISFACTION_COUNT, 1, sign)


def state_tally(state: Mapping[str, Any], day: date) -> Tallies:
    """g: what a ticket in `state` counts, `day` being the day of the event looked at."""
    out = _Sum()
    _ticket_part(state, day, out, 1)
    _resolution_part(state, day, out, 1)
    return out.result()


def event_tally(entry: HistoryEntry, thresholds: Thresholds) -> Tallies:
    """h: what the event itself counts, on its day."""
    out = _Sum()
    day = day_of(entry.executed_at)
    kind = entry.action_type
    if kind in AUTONOMOUS:
        out.add(day, t.key(t.ACTIONS_BY, kind.value))
    # The follow-up check's escalation is the system's, not a decision of the agent's.
    followup_check = entry.action_params.get("trigger") == "followup_check"
    if kind in DECIDING and entry.confidence_score is not None and not followup_check:
        confidence = entry.confidence_score
        out.add(day, t.DECISIONS)
        out.add(day, t.CONFIDENCE_MILLI, round(confidence * 1000))
        out.add(day, t.key(t.CONFIDENCE_BY, level(confidence, thresholds)))
    if kind == ActionType.DEFER_TO_HUMAN:
        out.add(day, t.DEFERRED)
    elif kind == ActionType.SHADOW_DECISION:
        out.add(day, t.SHADOWED)
    elif kind == ActionType.ROLLBACK:
        out.add(day, t.ROLLED_BACK)
    return out.result()


def delta(entry: HistoryEntry, thresholds: Thresholds) -> Tallies:
    """What the event `entry` records changes in the tallies: g(after) - g(before) + h(entry).
    The same whatever was marked on the entry later (a rollback's `rolled_back`)."""
    day = day_of(entry.executed_at)
    out = _Sum()
    _ticket_part(entry.after_state, day, out, 1)
    _ticket_part(entry.before_state, day, out, -1)
    _resolution_part(entry.after_state, day, out, 1)
    if entry.action_type != ActionType.AUTO_RESOLVE:  # a new resolution leaves the earlier one counted
        _resolution_part(entry.before_state, day, out, -1)
    out.merge(event_tally(entry, thresholds))
    return out.result()


def created(ticket: Ticket, initial: Mapping[str, Any] | None = None) -> Tallies:
    """What a ticket's creation counts: `tickets`, and what its first state counts (`initial`:
    the state of version 1; `ticket.state()` when it is that version)."""
    day = day_of(ticket.created_at)
    out = _Sum()
    out.add(day, t.TICKETS)
    out.merge(state_tally(initial if initial is not None else ticket.state(), day))
    return out.result()


def recount(ticket: Ticket, entries: Sequence[HistoryEntry], thresholds: Thresholds) -> Tallies:
    """A ticket's tallies from scratch: its creation and every event since (entries 2..version,
    any order), which is what recording each as it happened adds up to."""
    ordered = sorted(entries, key=lambda e: e.seq)
    if [e.seq for e in ordered] != list(range(2, ticket.version + 1)):
        raise ValueError(f"ticket {ticket.id}: history is not versions 2..{ticket.version}")
    out = _Sum()
    out.merge(created(ticket, ordered[0].before_state if ordered else None))
    for entry in ordered:
        out.merge(delta(entry, thresholds))
    return out.result()


def add_up(parts: Iterable[Tallies]) -> Tallies:
    out = _Sum()
    for part in parts:
        out.merge(part)
    return out.result()


def difference(stored: Tallies, recomputed: Tallies) -> Tallies:
    """recomputed - stored, by day and counter: what recording it would repair."""
    out = _Sum()
    out.merge(recomputed)
    out.merge(stored, -1)
    return out.result()
