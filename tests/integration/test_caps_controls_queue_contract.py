"""Contracts of ControlsRepository and MessageQueue: fakes and Azure adapters alike."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.domain.models import AgentControls, AgentMode
from shared.storage import provision as names
from shared.storage.clients import StorageClients
from shared.storage.memory import InMemoryControlsRepository
from shared.storage.queues import AzureMessageQueue
from shared.storage.tables import TableControlsRepository

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


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
