"""`manage analytics recompute`: the analytics tallies rebuilt from the source records, compared
with what is stored, and repaired.

The one scan of every ticket in the product (a repair tool, and the oracle of the tests): each
ticket and its whole history are recounted (shared/domain/analytics.py `recount`), summed by day,
and compared with the store's read of the same days. Every differing (day, counter) is reported;
unless it is a dry run, each differing day is repaired by recording the difference as an event of
its own, `repair-{timestamp}-{YYYYMMDD}`: recording is once per id, so a repair retried after a
failure (or run twice by the same invocation) never applies twice.

The store's reads count folded events only (shared/ports.py AnalyticsStore): recompute folds
the journal first (FOLD_LIMIT rows a round, until nothing is left or FOLD_ROUNDS), so that what it
compares is every event recorded, folded or not. A dry run folds too: a fold moves records into
the sums and changes no figure.

Run it when writes are quiet: an event committed after its ticket was read but recorded before
the store is read shows as a difference, and its repair would count it twice. The same goes for
the 30 minutes after a storage outage, while running instances still write the records they kept
(shared/services/analytics.py RetryingAnalytics). A difference that a second `--dry-run` a few
minutes later still shows is real.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from shared.domain.analytics import add_up, difference, recount
from shared.domain.decision import Thresholds
from shared.domain.models import HistoryEntry, Ticket
from shared.domain.tally import Tallies
from shared.ports import AnalyticsStore, Clock, TicketRepository

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(9999, 12, 31)
PAGE = 200
FOLD_LIMIT = 5000
FOLD_ROUNDS = 100  # a bound, should writes never stop meanwhile


@dataclass(frozen=True)
class Difference:
    day: date
    counter: str
    stored: int
    recomputed: int


@dataclass
class RecomputeReport:
    tickets: int = 0
    differences: list[Difference] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # the repair events recorded


def history(tickets: TicketRepository, ticket: Ticket) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    cursor: str | None = None
    while True:
        page = tickets.history(ticket.id, PAGE, cursor)
        entries.extend(page.results)
        cursor = page.next_cursor
        if not cursor:
            return entries


def recount_all(tickets: TicketRepository, thresholds: Thresholds) -> tuple[Tallies, int]:
    """Every ticket's tallies from scratch, summed by day; and how many tickets."""
    parts: list[Tallies] = []
    cursor: str | None = None
    while True:
        page = tickets.list_all(None, PAGE, cursor)
        for ticket in page.results:
            parts.append(recount(ticket, history(tickets, ticket), thresholds))
        cursor = page.next_cursor
        if not cursor:
            return add_up(parts), len(parts)


def recompute(
    tickets: TicketRepository,
    store: AnalyticsStore,
    thresholds: Thresholds,
    clock: Clock,
    since: date | None = None,
    until: date | None = None,
    dry_run: bool = False,
) -> RecomputeReport:
    first, last = since or FIRST_DAY, until or LAST_DAY
    if first > last:
        raise ValueError("since is after until")
    recomputed, count = recount_all(tickets, thresholds)
    recomputed = {day: tally for day, tally in recomputed.items() if first <= day <= last}
    for _ in range(FOLD_ROUNDS):
        if not store.fold(FOLD_LIMIT):
            break
    stored = store.read(first, last)
    report = RecomputeReport(tickets=count)
    repairs = difference(stored, recomputed)
    for day in sorted(repairs):
        for name in sorted(repairs[day]):
            was, now = stored.get(day, Counter())[name], recomputed.get(day, Counter())[name]
            report.differences.append(Difference(day, name, was, now))
    if dry_run:
        return report
    stamp = clock().strftime("%Y%m%dT%H%M%S%f")
    for day in sorted(repairs):
        event = f"repair-{stamp}-{day:%Y%m%d}"
        store.record(event, {day: repairs[day]})
        report.repaired.append(event)
    return report
