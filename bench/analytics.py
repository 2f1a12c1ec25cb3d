"""`analytics_scaling` (SPEC §11): both analytics reads at 1,000 and at 50,000 tickets.

The source data of each size is seeded through the port (`AnalyticsStore.record`, which works with
whichever adapter the container has), fast: one recorded event carries the deltas of a batch of
tickets of one day (the tallies a read sums are the same as with one event per ticket change),
recorded from 16 threads, then folded as the sweeper folds. Each size gets 30 days of its own,
so the two reads cover the same number of days and differ only in the tickets behind them.

Measured in process on `Container.for_azure` (no HTTP): the p50 of 30 calls of each read after a
warm-up, and the round trips of one call (the tallies, the caps' usage; the controls are cached)."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from bench.common import SETTINGS, median
from shared.config import Settings
from shared.container import Container
from shared.domain import tally as t
from shared.storage.clients import round_trips
from shared.storage.memory import InMemoryAnalytics

SIZES = {"small": 1_000, "large": 50_000}
DAYS = 30
BATCH = 25  # tickets per recorded event
SAMPLES = 30
# Each size's 30 days, far from today and from each other (no other figure of the run lands there).
FIRST_DAY = {"small": date(2030, 1, 1), "large": date(2031, 1, 1)}


def ticket_life(n: int) -> Counter[str]:
    """What one ticket adds, varied by its number: created and processed, an auto-resolution most
    of the time (confirmed, failed, assumed or rolled back), an escalation or a deferral else."""
    life: Counter[str] = Counter(
        {t.TICKETS: 1, t.PROCESSED: 1, t.DECISIONS: 1, t.CONFIDENCE_MILLI: 600 + n % 400}
    )
    life[t.key(t.CONFIDENCE_BY, ("low", "medium", "high")[n % 3])] += 1
    if n % 10 < 7:
        life.update({t.RESOLUTIONS: 1, t.key(t.ACTIONS_BY, "AUTO_RESOLVE"): 1, t.CLOSED: 1})
        life[t.RESOLUTION_SECONDS] += 60 + n % 600
        fate = n % 7
        if fate == 0:
            life.update({t.VOIDED: 1, t.ROLLED_BACK: 1})
        else:
            life[t.key(t.RESOLUTIONS_BY, "AUTO_RESOLVE")] += 1
            if fate in (1, 2, 3):
                life.update({t.CONFIRMED: 1, t.key(t.CONFIRMED_BY, "AUTO_RESOLVE"): 1})
                life.update({t.SATISFACTION_SUM: 3 + n % 3, t.SATISFACTION_COUNT: 1})
            elif fate == 4:
                life.update({t.FAILED: 1, t.REOPENED: 1, t.key(t.FAILED_BY, "AUTO_RESOLVE"): 1})
            elif fate == 5:
                life[t.ASSUMED] += 1
    elif n % 10 < 9:
        life[t.key(t.ACTIONS_BY, "ESCALATE")] += 1
    else:
        life[t.DEFERRED] += 1
    return life


def seed(container: Container, size: str) -> None:
    tickets, first = SIZES[size], FIRST_DAY[size]

    def batch(start: int) -> None:
        summed: Counter[str] = Counter()
        for n in range(start, min(start + BATCH, tickets)):
            summed.update(ticket_life(n))
        day = first + timedelta(days=(start // BATCH) % DAYS)
        container.analytics.record(f"bench-{size}-{start}", {day: summed})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(batch, range(0, tickets, BATCH)))
    while container.analytics.fold(1000):  # as the sweeper does each run
        pass


def measure(container: Container, size: str) -> dict[str, Any]:
    since = FIRST_DAY[size]
    until = since + timedelta(days=DAYS - 1)
    reads = {
        "resolution_analytics": lambda: container.report_service.resolution(since, until),
        "agent_analytics": lambda: container.report_service.agent(since, until),
    }
    figures: dict[str, Any] = {}
    for name, read in reads.items():
        read()  # warm: the controls cached, connections open
        before = round_trips()
        result = read()
        trips = round_trips() - before
        seconds = []
        for _ in range(SAMPLES):
            start = time.perf_counter()
            read()
            seconds.append(time.perf_counter() - start)
        figures[name] = {"round_trips": trips, "p50_ms": round(median(seconds) * 1000, 2)}
        if name == "resolution_analytics":
            figures["total_resolutions"] = result.total_resolutions  # type: ignore[attr-defined]
        else:
            figures["total_tickets"] = result.total_tickets  # type: ignore[attr-defined]
    assert figures["total_tickets"] == SIZES[size], figures  # every seeded ticket is counted
    return figures


def analytics_scaling(connection_string: str) -> dict[str, Any] | None:
    """SPEC §11's `analytics_scaling`, with the detail per read; None while the container's
    analytics are the in-memory fake (no storage to measure: the key is left out)."""
    settings = Settings(AzureWebJobsStorage=connection_string, **SETTINGS)  # type: ignore[arg-type]
    container = Container.for_azure(settings)
    if isinstance(container.analytics, InMemoryAnalytics):
        return None
    detail = {}
    for size in SIZES:
        seed(container, size)
        detail[size] = measure(container, size)
    small, large = detail["small"], detail["large"]

    def slower(figures: dict[str, Any]) -> float:
        return max(figures["resolution_analytics"]["p50_ms"], figures["agent_analytics"]["p50_ms"])

    def trips(figures: dict[str, Any]) -> int:
        return max(figures["resolution_analytics"]["round_trips"], figures["agent_analytics"]["round_trips"])

    return {
        "small_tickets": SIZES["small"],
        "large_tickets": SIZES["large"],
        "small_ms": slower(small),
        "large_ms": slower(large),
        "small_round_trips": trips(small),
        "large_round_trips": trips(large),
        "detail": detail,
    }
