from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devhost import azurite
from tests.devhost import sample_app

# Fast retries for tests: maxDequeueCount 3, a 1 s visibilityTimeout, short polling, 3 s timeout.
TEST_HOST_JSON = {
    "version": "2.0",
    "functionTimeout": "00:00:03",
    "extensions": {
        "http": {"routePrefix": "api"},
        "queues": {
            "batchSize": 4,
            "newBatchThreshold": 2,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.500",
            "messageEncoding": "base64",
        },
    },
}


@pytest.fixture(scope="module")
def storage() -> Iterator[azurite.Azurite]:
    """An Azurite with what the sample app expects; devhost itself creates nothing."""
    emulator = azurite.start()
    TableClient.from_connection_string(emulator.connection_string, sample_app.TABLE).create_table()
    for name in (sample_app.QUEUE, sample_app.SLOW_QUEUE):
        QueueClient.from_connection_string(emulator.connection_string, name).create_queue()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def host_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("devhost") / "host.json"
    path.write_text(json.dumps(TEST_HOST_JSON))
    return path


def queue(storage: azurite.Azurite, name: str, base64_encoded: bool = True) -> QueueClient:
    policy = TextBase64EncodePolicy() if base64_encoded else None
    return QueueClient.from_connection_string(storage.connection_string, name, message_encode_policy=policy)


def records(storage: azurite.Azurite, kind: str) -> list[dict[str, Any]]:
    table = TableClient.from_connection_string(storage.connection_string, sample_app.TABLE)
    return list(table.query_entities("PartitionKey eq @kind", parameters={"kind": kind}))


def poisoned(storage: azurite.Azurite, name: str) -> list[str]:
    client = queue(storage, f"{name}-poison", base64_encoded=False)
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:  # created by the host when the first message must go there
        return []


def exists(storage: azurite.Azurite, name: str) -> bool:
    try:
        queue(storage, name).get_queue_properties()
    except ResourceNotFoundError:
        return False
    return True


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def eventually(check: Callable[[], Any], timeout: float = 20, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"condition not met within {timeout}s"
            return result
        time.sleep(interval)
