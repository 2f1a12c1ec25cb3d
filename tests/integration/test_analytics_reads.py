"""The analytics reads on Azurite: at most three storage round trips each (the tallies, the caps,
the controls), the same with ten times the events behind the figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.storage.clients import round_trips
from tests.conftest import SECRET, bearer
from tests.unit.http_client import invoke, payload

STAFF = bearer("sam", "staff")
READS = (
    "tickets_resolution_analytics",
    "tickets_agent_analytics",
    "tickets_analytics",
    "tickets_weekly_report",
)


@pytest.fixture
def azure(azurite_conn: str) -> Iterator[Container]:
    settings = Settings(  # type: ignore[call-arg]
        AzureWebJobsStorage=azurite_conn, AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://"
    )
    container = Container.for_azure(settings)
    use_container(container)
    yield container
    use_container(None)


def seed(c: Container, start: int, count: int) -> None:
    """`count` ticket events spread over the last 14 days, through the port (either adapter),
    then folded as the sweeper would (the reads see folded events only)."""
    today = datetime.now(UTC).date()

    def one(n: int) -> None:
        day = today - timedelta(days=n % 14)
        c.analytics.record(f"bench-{n}", {day: Counter(tickets=1, resolutions=1, confirmed=n % 2)})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(start, start + count)))
    while c.analytics.fold(1000):
        pass


def trips(name: str) -> tuple[int, dict[str, object]]:
    before = round_trips()
    response = invoke(name, headers=STAFF)
    assert response.status_code == 200, response.get_body()
    return round_trips() - before, payload(response)


def test_each_read_is_at_most_three_round_trips_whatever_the_events(azure: Container) -> None:
    base = trips("tickets_resolution_analytics")[1]  # the session's Azurite may hold other tests' events
    seed(azure, 0, 40)
    for name in READS:
        trips(name)  # warm: the controls cached, as on a steady instance
    small = {name: trips(name)[0] for name in READS}
    seed(azure, 40, 360)
    for name in READS:
        trips(name)  # warm again: the controls' cache may have expired while seeding
    large = {name: trips(name)[0] for name in READS}
    assert small == large, (small, large)
    assert all(n <= 3 for n in large.values()), large
    figures = trips("tickets_resolution_analytics")[1]
    assert figures["total_resolutions"] - base["total_resolutions"] == 400  # type: ignore[operator]
    assert figures["confirmed_successful"] - base["confirmed_successful"] == 200  # type: ignore[operator]


def test_the_caps_usage_is_one_round_trip(azure: Container) -> None:
    now = datetime(2031, 3, 4, 5, 6, tzinfo=UTC)  # a day no other test takes slots on
    for n in range(5):
        assert azure.caps.try_acquire(now, f"holder-{n}") is None
    before = round_trips()
    assert azure.caps.usage(now) == (5, 5)
    assert round_trips() - before == 1
