"""`analytics_scaling` (SPEC §11): both analytics reads at 1,000 and at 50,000 tickets (and, in
the detail, at 10,000).

Seeded through the port (`AnalyticsStore.record`, whichever adapter the container has), fast:
each size is 1,000 batches of tickets // 1,000 tickets of one day, each batch recorded as one
event per step of the tickets' lives (created; analysed; acted on; the outcome), from 16 threads.
The tallies a read sums are those one event per ticket change would leave. Each size gets 30 days
of its own: the reads cover the same days and differ only in the tickets behind them.

Then folded through the store's own fold (`AnalyticsStore.fold`, as the sweeper's runs do: the
reads see folded events only), not seeded into the sums directly, so the bench also times a fold
of its 12,000 events (`fold_seconds` in the detail).

Measured in process on `Container.for_azure` (no HTTP): the round trips of one call of each read
(the tallies, the caps' usage; the controls are cached) and the p50 of 40 calls after a warm-up,
sizes and reads interleaved call by call.

What a read costs is one query of the year's sums partition: at most 30 rows here (one per day),
each holding the day's counters (about 25 names), whatever the tickets behind them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from bench.common import SETTINGS, median
from shared.config import Settings
from shared.container import Container
from shared.domain import tally as t
from shared.storage import names
from shared.storage.clients import StorageClients, round_trips
from shared.storage.memory import InMemoryAnalytics
from shared.storage.tables.analytics import TableAnalytics

SIZES = {"small": 1_000, "medium": 10_000, "large": 50_000}
DAYS = 30
# Batches per size, whatever its tickets: each batch is tickets // BATCHES tickets of one day,
# recorded as one event per step of their lives (created; analysed; acted on; the outcome). So
# both sizes have about the same journal rows, each with the same few counters, and, folded, the
# same 30 x 8 sum rows holding every counter, as a real day's many events make them: the sizes
# differ only in the tickets those rows add up.
BATCHES = 1000
STEPS = 4
SAMPLES = 40
# Each size's 30 days, far from today and from each other (no other figure of the run lands there).
FIRST_DAY = {"small": date(2030, 1, 1), "medium": date(2030, 6, 1), "large": date(2031, 1, 1)}


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


def step(name: str) -> int:
    """Which step of a ticket's life adds the counter: created, analysed, acted on, the outcome."""
    if name == t.TICKETS:
        return 0
    if name in (t.PROCESSED, t.DECISIONS, t.CONFIDENCE_MILLI) or name.startswith(f"{t.CONFIDENCE_BY}:"):
        return 1
    if name in (t.RESOLUTIONS, t.DEFERRED, t.CLOSED, t.RESOLUTION_SECONDS) or name.startswith(
        f"{t.ACTIONS_BY}:"
    ):
        return 2
    return 3


def seed(container: Container, size: str) -> None:
    tickets, first = SIZES[size], FIRST_DAY[size]

    per_batch = tickets // BATCHES

    def batch(number: int) -> None:
        steps: list[Counter[str]] = [Counter() for _ in range(STEPS)]
        for n in range(number * per_batch, (number + 1) * per_batch):
            for name, value in ticket_life(n).items():
                steps[step(name)][name] += value
        # Consecutive batches share a day: with one ticket a batch (1,000 tickets), a day taken as
        # number % DAYS would only ever see tickets of one n % 10, so one outcome, and its row
        # would hold a quarter fewer counters than a day of the larger sizes.
        day = first + timedelta(days=number * DAYS // BATCHES)
        for index, counts in enumerate(steps):
            container.analytics.record(f"bench-{size}-{number}-{index}", {day: counts})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(batch, range(BATCHES)))


def fold_all(connection_string: str) -> int:
    """Fold every journal row now, as the sweeper's runs do."""
    store = TableAnalytics(StorageClients(connection_string).table(names.ANALYTICS))
    folded = 0
    while batch := store.fold(10_000):
        folded += batch
    return folded


READS = ("resolution_analytics", "agent_analytics")


def reader(container: Container, size: str, name: str) -> Callable[[], Any]:
    since = FIRST_DAY[size]
    until = since + timedelta(days=DAYS - 1)
    if name == "resolution_analytics":
        return lambda: container.report_service.resolution(since, until)
    return lambda: container.report_service.agent(since, until)


def measure(container: Container, samples: int = SAMPLES) -> dict[str, Any]:
    """Each read of each size: its round trips, and the p50 of SAMPLES calls, the sizes and reads
    interleaved call by call so that the machine's noise falls on all of them alike."""
    calls = {(size, name): reader(container, size, name) for size in SIZES for name in READS}
    figures: dict[str, Any] = {size: {} for size in SIZES}
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    for (size, name), read in calls.items():
        read()  # warm: the controls cached, connections open
        before = round_trips()
        result = read()
        figures[size][name] = {"round_trips": round_trips() - before}
        if name == "agent_analytics":  # every seeded ticket is counted
            assert result.total_tickets == SIZES[size], (size, result.total_tickets)
    for _ in range(samples):
        for key, read in calls.items():
            start = time.perf_counter()
            read()
            seconds[key].append(time.perf_counter() - start)
    for (size, name), taken in seconds.items():
        figures[size][name]["p50_ms"] = round(median(taken) * 1000, 2)
    return figures


def analytics_scaling(connection_string: str) -> dict[str, Any] | None:
    """SPEC §11's `analytics_scaling`, with the detail per read; None while the container's
    analytics are the in-memory fake (no storage to measure: the key is left out)."""
    settings = Settings(AzureWebJobsStorage=connection_string, **SETTINGS)  # type: ignore[arg-type]
    container = Container.for_azure(settings)
    if isinstance(container.analytics, InMemoryAnalytics):
        return None
    for size in SIZES:
        seed(container, size)
    start = time.perf_counter()
    folded = fold_all(connection_string)
    fold_seconds = round(time.perf_counter() - start, 2)
    detail = measure(container)
    detail["events_folded"] = folded
    detail["fold_seconds"] = fold_seconds
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
