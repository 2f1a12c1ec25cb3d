"""The app provisions its own storage (the Azure host creates nothing): on a fresh account, with
storage down at first use, concurrently, and after a table vanished. In-process HTTP calls
against an Azurite that nothing provisioned."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devhost import azurite
from shared.container import use_container
from shared.storage.clients import DEV_KEY, StorageClients, dev_connection_string, round_trips
from shared.storage.names import QUEUES, RATE_LIMITS, TABLES, TICKET_OWNERS, TICKETS, poison
from tests.conftest import SECRET, bearer
from tests.helpers import manage_check
from tests.unit.http_client import invoke, payload

ALICE = bearer("alice")
ROOT = Path(__file__).resolve().parents[2]


def app_settings(monkeypatch: pytest.MonkeyPatch, connection_string: str) -> None:
    for name, value in {
        "AzureWebJobsStorage": connection_string,
        "AUTH_JWT_SECRET": SECRET,
        "ENVIRONMENT": "local",
        "RATELIMIT_STORAGE_URI": "",
        "SENTRY_DSN": "",
    }.items():
        monkeypatch.setenv(name, value)
    use_container(None)


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch) -> Iterator[azurite.Azurite]:
    """A fresh Azurite, nothing created in it, and the app's settings pointing at it."""
    emulator = azurite.start()
    app_settings(monkeypatch, emulator.connection_string)
    try:
        yield emulator
    finally:
        use_container(None)
        emulator.stop()


def create() -> int:
    response = invoke("tickets_create", "POST", json_body={"issue_type": "VPN"}, headers=ALICE)
    assert response.status_code == 201, response.get_body()
    return int(payload(response)["id"])


def existing(conn: str) -> tuple[set[str], set[str]]:
    clients = StorageClients(conn)
    tables = {t.name for t in clients.table_service.list_tables()}
    queues = {q.name for q in clients.queue_service.list_queues()}
    return tables, queues


def test_on_a_fresh_account_the_first_call_creates_every_table_and_queue(bare: azurite.Azurite) -> None:
    assert existing(bare.connection_string) == (set(), set())
    ticket_id = create()
    tables, queues = existing(bare.connection_string)
    assert tables >= set(TABLES)
    assert queues >= set(QUEUES) | {poison(q) for q in QUEUES}  # the triggers' queues too
    before = round_trips()
    assert invoke("tickets_get", headers=ALICE, route={"id": str(ticket_id)}).status_code == 200
    assert round_trips() - before == 1  # once per process, not per request
    process = invoke("agent_process", "POST", headers=ALICE, route={"id": str(ticket_id)})
    assert process.status_code == 202, process.get_body()


def test_first_calls_in_parallel_all_succeed(bare: azurite.Azurite) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: create(), range(16)))
    assert len(set(ids)) == 16


def test_storage_down_at_first_use_answers_503_and_the_next_call_provisions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = (azurite.free_port(), azurite.free_port(), azurite.free_port())
    app_settings(monkeypatch, dev_connection_string(*ports))
    emulator = None
    try:
        for _ in range(2):  # a failed provisioning is not remembered as done, nor as failed forever
            started = time.monotonic()
            response = invoke("tickets_create", "POST", json_body={"issue_type": "VPN"}, headers=ALICE)
            assert time.monotonic() - started < 15
            assert response.status_code == 503 and payload(response)["code"] == "storage_unavailable"
            assert response.headers["Retry-After"] == "5"
        emulator = azurite.start(ports=ports)
        create()
        assert existing(emulator.connection_string)[0] >= set(TABLES)
    finally:
        use_container(None)
        if emulator:
            emulator.stop()


@pytest.mark.parametrize("table", [TICKETS, TICKET_OWNERS, RATE_LIMITS])
def test_a_table_that_vanished_is_created_again(bare: azurite.Azurite, table: str) -> None:
    """An operator deleted it, or the emulator restarted empty: 503 at once, then it works."""
    ticket = create()
    StorageClients(bare.connection_string).table_service.delete_table(table)

    def call() -> object:  # creating uses the ticket tables; processing the throttle's
        if table == RATE_LIMITS:
            return invoke("agent_process", "POST", headers=ALICE, route={"id": str(ticket)})
        return invoke("tickets_create", "POST", json_body={"issue_type": "VPN"}, headers=ALICE)

    started = time.monotonic()
    response = call()
    assert time.monotonic() - started < 5  # not fifty "lost races" on a table that is gone
    if table != RATE_LIMITS:  # the `limits` backend creates its table again by itself
        assert response.status_code == 503 and payload(response)["code"] == "storage_unavailable"  # type: ignore[arg-type]
        response = call()
    assert response.status_code in (201, 202)  # type: ignore[attr-defined]


def test_check_creates_what_is_missing_and_says_so(bare: azurite.Azurite) -> None:
    result = manage_check({"AzureWebJobsStorage": bare.connection_string, "ENVIRONMENT": "local"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "storage: ok" in result.stdout and DEV_KEY not in result.stdout
    tables, queues = existing(bare.connection_string)
    assert tables >= set(TABLES) and queues >= set(QUEUES) | {poison(q) for q in QUEUES}
