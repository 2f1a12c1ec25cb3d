"""Storage clients: the shared transport and the proxy settings it must not ignore, identity-based
accounts, and the timeouts and bounded retries of every client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from shared.config import Settings
from shared.storage import clients

STRONG = "Zq8v1M3xT0bL7kR9wE2yN5pA4sD6fG0h"


@pytest.fixture(autouse=True)
def fresh_transport() -> Iterator[None]:
    clients._shared_transport.cache_clear()
    yield
    clients._shared_transport.cache_clear()


def test_without_a_proxy_every_client_shares_one_session_that_skips_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    first, second = clients.client_options(), clients.client_options()
    assert first["transport"] is second["transport"]
    assert first["transport"].session.trust_env is False
    assert first["raw_request_hook"] is clients.count_request


def test_a_configured_proxy_keeps_the_sdks_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert "transport" not in clients.client_options()


def test_use_development_storage_means_the_emulators_loopback_account() -> None:
    resolved = clients.resolve_connection_string("UseDevelopmentStorage=true")
    assert "AccountName=devstoreaccount1" in resolved and "TableEndpoint=http://127.0.0.1:10002/" in resolved
    assert clients.resolve_connection_string("AccountName=x;AccountKey=y") == "AccountName=x;AccountKey=y"


@pytest.mark.parametrize(
    "value", ["UseDevelopmentStorage=true", "usedevelopmentstorage=TRUE;", " UseDevelopmentStorage = true ; "]
)
def test_development_storage_is_recognised_whatever_its_case_by_the_app_and_devhost(value: str) -> None:
    """One test for both: devhost starts Azurite for exactly what the app resolves to the emulator."""
    import devhost.__main__ as devhost_main

    assert devhost_main.is_dev_storage is clients.is_dev_storage
    assert clients.is_dev_storage(value)
    assert "AccountName=devstoreaccount1" in clients.resolve_connection_string(value)


@pytest.mark.parametrize(
    "value", ["", "UseDevelopmentStorage=false", "UseDevelopmentStorage=true;AccountName=x", "AccountName=x"]
)
def test_anything_else_is_a_real_connection_string_left_as_it_is(value: str) -> None:
    assert not clients.is_dev_storage(value)
    assert clients.resolve_connection_string(value) == value


# -- identity-based storage (no network: clients and credentials are built, never used) --------


def identity_settings(**values: str) -> Settings:
    return Settings(ENVIRONMENT="production", AUTH_JWT_SECRET=STRONG, **values)  # type: ignore[arg-type]


def test_an_account_name_means_its_public_endpoints_and_the_default_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azure.identity import DefaultAzureCredential

    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    storage = clients.StorageClients.for_settings(identity_settings(AzureWebJobsStorage__accountName="acct"))
    assert storage.identity is not None and storage.connection_string == ""
    table, queue = storage.table("tickets"), storage.queue("agent-actions")
    assert table.url.startswith("https://acct.table.core.windows.net")
    assert queue.url.startswith("https://acct.queue.core.windows.net/agent-actions")
    assert storage.table_service.url.startswith("https://acct.table.core.windows.net")
    assert isinstance(storage.credential, DefaultAzureCredential)
    assert table.credential is storage.credential and queue.credential is storage.credential
    assert table.account_name == "acct"


def test_service_uris_and_a_user_assigned_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import ManagedIdentityCredential

    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    settings = identity_settings(
        AzureWebJobsStorage__tableServiceUri="https://acct.table.example.net/",
        AzureWebJobsStorage__queueServiceUri="https://acct.queue.example.net",
        AzureWebJobsStorage__credential="managedidentity",
        AzureWebJobsStorage__clientId="11111111-2222-3333-4444-555555555555",
    )
    storage = clients.StorageClients.for_settings(settings)
    assert storage.identity == clients.IdentityAccount(
        "https://acct.table.example.net",
        "https://acct.queue.example.net",
        "managedidentity",
        "11111111-2222-3333-4444-555555555555",
    )
    assert isinstance(storage.credential, ManagedIdentityCredential)
    assert storage.queue("followups").url.startswith("https://acct.queue.example.net/followups")


def test_the_throttle_storage_shares_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.container import Container
    from shared.storage.ratelimit import AzureTableStorage

    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    container = Container.for_azure(identity_settings(AzureWebJobsStorage__accountName="acct"))
    throttle = container.throttle_storage
    assert isinstance(throttle, AzureTableStorage)
    assert throttle._endpoint == "https://acct.table.core.windows.net"
    assert container.storage is not None and throttle._credential is container.storage.credential


def test_a_connection_string_wins_over_identity_settings() -> None:
    settings = identity_settings(
        AzureWebJobsStorage="UseDevelopmentStorage=true", AzureWebJobsStorage__accountName="acct"
    )
    storage = clients.StorageClients.for_settings(settings)
    assert storage.identity is None and "devstoreaccount1" in storage.connection_string


# -- timeouts and bounded retries ----------------------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[tuple[int, list[socket.socket]]]:
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for connection in accepted:
        connection.close()


def test_a_hung_storage_fails_after_one_read_retry(
    monkeypatch: pytest.MonkeyPatch, black_hole: tuple[int, list[socket.socket]]
) -> None:
    monkeypatch.setattr(clients, "READ_TIMEOUT_SECONDS", 0.5)
    port, accepted = black_hole
    storage = clients.StorageClients(clients.dev_connection_string(port, port, port))
    for operation in (
        lambda: storage.table("tickets").get_entity("p", "r"),
        lambda: storage.queue("agent-actions").send_message("x"),
    ):
        before, sent = len(accepted), clients.round_trips()
        started = time.monotonic()
        with pytest.raises(ServiceResponseError):
            operation()
        assert time.monotonic() - started < 10  # SDK defaults: minutes
        assert len(accepted) - before == 2 and clients.round_trips() - sent == 2


def test_unreachable_storage_fails_after_two_retries_within_seconds() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    storage = clients.StorageClients(clients.dev_connection_string(port, port, port))
    for operation in (
        lambda: storage.table("tickets").get_entity("p", "r"),
        lambda: storage.queue("agent-actions").send_message("x"),
    ):
        sent = clients.round_trips()
        started = time.monotonic()
        with pytest.raises(ServiceRequestError):
            operation()
        assert time.monotonic() - started < 10  # the queue SDK alone waits 15 s before its first retry
        assert clients.round_trips() - sent == 3
