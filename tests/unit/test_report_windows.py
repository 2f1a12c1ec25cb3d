"""Property: whatever events land on whatever days, a read of any window counts exactly the events
of its days (both ends included), computed here from scratch over the events."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import Settings
from shared.container import Container
from shared.domain import report
from shared.domain import tally as t
from shared.services.reports import Caps, ReportService
from shared.storage.memory import InMemoryAnalytics
from tests.conftest import SECRET

START = date(2026, 1, 1)
NAMES = [t.RESOLUTIONS, t.VOIDED, t.CONFIRMED, t.FAILED, t.ASSUMED, t.TICKETS, t.PROCESSED]
events = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(NAMES), st.integers(-2, 5)), max_size=60)
SETTINGS = Settings(AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://")  # type: ignore[call-arg]
C = Container.in_memory(SETTINGS, clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))  # caps, controls


@settings(max_examples=150, deadline=None)
@given(events=events, since=st.integers(0, 40), length=st.integers(0, 40))
def test_a_window_counts_exactly_its_days(
    events: list[tuple[int, str, int]], since: int, length: int
) -> None:
    store = InMemoryAnalytics()
    service = ReportService(store, C.caps, Caps(10, 100), C.controls, C.tickets, report.Thresholds(), C.clock)
    for n, (offset, name, delta) in enumerate(events):
        store.record(f"e{n}", {START + timedelta(days=offset): Counter({name: delta})})
    first, last = START + timedelta(days=since), START + timedelta(days=since + length)
    counted: Counter[str] = Counter()
    for offset, name, delta in events:
        if since <= offset <= since + length:
            counted[name] += delta
    figures = service.resolution(first, last)
    assert figures == report.resolution_analytics(counted, first, last)
    assert figures.total_resolutions == counted[t.RESOLUTIONS] - counted[t.VOIDED]
    agent = service.agent(first, last)
    assert (agent.total_tickets, agent.processed_by_agent) == (counted[t.TICKETS], counted[t.PROCESSED])
