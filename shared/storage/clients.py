"""Storage clients built once per worker, and the count of requests they send.

Every client gets a request hook that counts one round trip per HTTP request the SDK
sends (retries included): the figure `make bench` reports and tests can assert on.
"""

from __future__ import annotations

import threading
import urllib.request
from functools import cache, cached_property
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def dev_connection_string(blob: int = 10000, queue: int = 10001, table: int = 10002) -> str:
    """The emulator's well-known account on loopback; `UseDevelopmentStorage=true` means the defaults."""
    base = f"http://127.0.0.1:{{}}/{DEV_ACCOUNT}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint={base.format(blob)};QueueEndpoint={base.format(queue)};"
        f"TableEndpoint={base.format(table)};"
    )


_sent_lock = threading.Lock()
_sent_total = 0


def count_request(_request: Any) -> None:
    global _sent_total
    with _sent_lock:
        _sent_total += 1


def round_trips() -> int:
    """Requests sent by every storage client of this process so far."""
    return _sent_total


@cache
def _shared_transport() -> RequestsTransport | None:
    """One connection pool for every client of the process, without requests' scan of the
    environment for proxy settings on each request (half a millisecond of CPU per request).
    Where a proxy is configured, the SDK's default transport is kept."""
    if urllib.request.getproxies():
        return None
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(
        pool_maxsize=64, max_retries=Retry(total=False, redirect=False, raise_on_status=False)
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False)


def client_options() -> dict[str, Any]:
    """Keyword arguments for every storage client: the round-trip count and the shared transport."""
    options: dict[str, Any] = {"raw_request_hook": count_request}
    transport = _shared_transport()
    if transport is not None:
        options["transport"] = transport
    return options


def resolve_connection_string(value: str) -> str:
    return dev_connection_string() if value.strip().rstrip(";") == "UseDevelopmentStorage=true" else value


class StorageClients:
    """Table and queue clients over one account; thread-safe, created lazily."""

    def __init__(self, connection_string: str) -> None:
        self.connection_string = resolve_connection_string(connection_string)
        self._tables: dict[str, TableClient] = {}
        self._queues: dict[str, QueueClient] = {}
        self._lock = threading.Lock()

    @cached_property
    def table_service(self) -> TableServiceClient:
        return TableServiceClient.from_connection_string(self.connection_string, **client_options())

    @cached_property
    def queue_service(self) -> QueueServiceClient:
        return QueueServiceClient.from_connection_string(self.connection_string, **client_options())

    def table(self, name: str) -> TableClient:
        with self._lock:
            if name not in self._tables:
                self._tables[name] = TableClient.from_connection_string(
                    self.connection_string, name, **client_options()
                )
            return self._tables[name]

    def queue(self, name: str) -> QueueClient:
        """Messages are base64 text, the Functions host's default `messageEncoding`."""
        with self._lock:
            if name not in self._queues:
                self._queues[name] = QueueClient.from_connection_string(
                    self.connection_string,
                    name,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                    **client_options(),
                )
            return self._queues[name]
