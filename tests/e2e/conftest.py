"""End-to-end: a fresh Azurite per test and the real function_app served by the local host.

Nothing provisions the storage beforehand: the app creates its tables and queues itself, as it
must on a fresh Azure storage account."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost import azurite
from devhost.process import HostProcess
from shared.storage.clients import StorageClients
from tests.conftest import SECRET, bearer

# Quick retries so failure paths finish in seconds; otherwise the project's host.json.
E2E_HOST_JSON = {
    **json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text()),
    "extensions": {
        "http": {"routePrefix": "api"},
        "queues": {
            "batchSize": 16,
            "newBatchThreshold": 8,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.500",
            "messageEncoding": "base64",
        },
    },
}


class Stack:
    """One Azurite and any number of host processes sharing it."""

    def __init__(self, emulator: azurite.Azurite, host_json: Path) -> None:
        self.emulator = emulator
        self.storage = StorageClients(emulator.connection_string)
        self.host_json = host_json
        self.hosts: list[HostProcess] = []

    def env(self, **settings: Any) -> dict[str, str]:
        return {
            "AzureWebJobsStorage": self.emulator.connection_string,
            "AUTH_JWT_SECRET": SECRET,
            "ENVIRONMENT": "local",
            "SENTRY_DSN": "",
            "AGENT_API_URL": "",
            "PYTHON_THREADPOOL_THREAD_COUNT": "16",
            "TICKET_CREATE_THROTTLE_RATE": "100000/minute",  # tests create hundreds of tickets per user
            "FOLLOWUP_SWEEP_SCHEDULE": "* * * * * *",  # the sweeper every second: follow-ups in seconds
            **{k: str(v) for k, v in settings.items()},
        }

    def host(self, **settings: Any) -> HostProcess:
        process = HostProcess(self.env(**settings), host_json=self.host_json)
        self.hosts.append(process)
        return process.start()

    def client(self, host: HostProcess) -> httpx.Client:
        return httpx.Client(base_url=host.url, timeout=30)

    def stop_storage(self) -> None:
        self.emulator.stop()

    def restart_storage(self) -> None:
        """A new, empty Azurite on the same ports (in memory: the data is gone)."""
        self.emulator = azurite.start(ports=self.emulator.ports)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(E2E_HOST_JSON))
    s = Stack(azurite.start(), host_json)
    try:
        yield s
    finally:
        for process in s.hosts:
            process.stop()
        s.emulator.stop()


def wait_until(check: Callable[[], Any], timeout: float = 30, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s; last result {result!r}")
        time.sleep(every)


def create_ticket(client: httpx.Client, user: str, **fields: Any) -> dict[str, Any]:
    body = {"issue_type": "Laptop", "description": "", **fields}
    response = client.post("/tickets/", json=body, headers=bearer(user))
    assert response.status_code == 201, response.text
    return response.json()
