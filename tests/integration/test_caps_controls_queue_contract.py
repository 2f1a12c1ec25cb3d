"""Contracts of ActionCaps, ControlsRepository and MessageQueue: fakes and Azure adapters alike."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from shared.domain.models import AgentControls, AgentMode
from shared.storage import provision as names
from shared.storage.clients import StorageClients, round_trips
from shared.storage.memory import InMemoryActionCaps, InMemoryControlsRepository
from shared.storage.ports import ActionCaps
from shared.storage.queues import AzureMessageQueue
from shared.storage.tables import TableActionCaps, TableControlsRepository

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def fresh_table(conn: str) -> TableClient:
    """Caps rows are keyed by day: a table of its own keeps each test's windows empty."""
    table = StorageClients(conn).table(f"caps{uuid.uuid4().hex[:12]}")
    table.create_table()
    return table


@pytest.fixture(params=["memory", "table"])
def make_caps(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "memory":  # one store: every "instance" is the same fake
        store: dict[tuple[int, int], InMemoryActionCaps] = {}
        return lambda hour, day: store.setdefault((hour, day), InMemoryActionCaps(hour, day))
    table = fresh_table(request.getfixturevalue("azurite_conn"))
    return lambda hour, day: TableActionCaps(table, hour, day)


def test_the_hourly_cap_admits_exactly_n_and_names_the_reason(make_caps) -> None:  # type: ignore[no-untyped-def]
    caps: ActionCaps = make_caps(3, 100)
    results = [caps.try_acquire(NOW) for _ in range(5)]
    assert results == [None, None, None, "hourly_cap_reached", "hourly_cap_reached"]
    assert caps.try_acquire(NOW + timedelta(hours=1)) is None
    assert caps.usage(NOW) == (3, 4)


def test_the_daily_cap_spans_hours(make_caps) -> None:  # type: ignore[no-untyped-def]
    caps: ActionCaps = make_caps(100, 2)
    assert [caps.try_acquire(NOW + timedelta(hours=h)) for h in range(3)] == [None, None, "daily_cap_reached"]
    assert caps.try_acquire(NOW + timedelta(days=1)) is None


def test_caps_are_exact_under_concurrency_across_instances(make_caps) -> None:  # type: ignore[no-untyped-def]
    first, second = make_caps(10, 500), make_caps(10, 500)  # two instances over one store
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: (first if i % 2 else second).try_acquire(NOW), range(40)))
    assert results.count(None) == 10
    assert set(results) - {None} == {"hourly_cap_reached"}


def test_an_uncontended_table_cap_take_is_one_round_trip(azurite_conn: str) -> None:
    caps = TableActionCaps(fresh_table(azurite_conn), 100, 500, shards=1)
    caps.try_acquire(NOW)
    before = round_trips()
    assert caps.try_acquire(NOW) is None
    assert round_trips() - before == 1


@pytest.fixture(params=["memory", "table"])
def controls_repo(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return InMemoryControlsRepository()
    table = StorageClients(request.getfixturevalue("azurite_conn")).table(names.CONTROLS)
    table.delete_entity("agent", "current")
    return TableControlsRepository(table)


def test_controls_round_trip(controls_repo) -> None:  # type: ignore[no-untyped-def]
    assert controls_repo.get() is None
    controls = AgentControls(
        enabled=False, mode=AgentMode.SHADOW, rollout_percent=10, reason="x", updated_by="a"
    )
    controls_repo.put(controls, {"by": "a"})
    assert controls_repo.get() == controls


def test_queue_messages_are_base64_json_and_honour_the_delay(azurite_conn: str) -> None:
    clients = StorageClients(azurite_conn)
    name = f"q{uuid.uuid4().hex[:10]}"
    clients.queue(name).create_queue()
    AzureMessageQueue(clients).send(name, {"ticket_id": 1, "text": "naïve 😀" * 2000}, delay_seconds=0)
    AzureMessageQueue(clients).send(name, {"ticket_id": 2}, delay_seconds=60)
    [message] = list(clients.queue(name).receive_messages(max_messages=32))
    assert json.loads(message.content) == {"ticket_id": 1, "text": "naïve 😀" * 2000}
    raw = StorageClients(azurite_conn).queue_service.get_queue_client(name)
    assert raw.get_queue_properties().approximate_message_count == 2
