"""Storage client options: the shared transport, and the proxy settings it must not ignore."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.storage import clients


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
