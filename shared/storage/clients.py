"""Storage clients built once per worker, and the count of requests they send.

Every client gets a request hook that counts one round trip per HTTP request the SDK
sends (retries included): the figure `make bench` reports and tests can assert on.

Every client also gets short timeouts and at most two retries with a short backoff (the SDK
defaults are 300 s and ten retries, and the queue SDK waits 15 s before its first retry): in a
storage brownout a request fails within seconds, with a 503, instead of holding a worker.

The account is named by a connection string or, as the Functions host reads it, by
`AzureWebJobsStorage__accountName` (or `__tableServiceUri` / `__queueServiceUri`) with an
Entra ID credential: `DefaultAzureCredential`, or the managed identity when `__credential`
is `managedidentity` (`__clientId` picks a user-assigned one).
"""

from __future__ import annotations

import random
import threading
import urllib.request
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, cast

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient
from azure.storage.queue import (
    ExponentialRetry,
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared.storage.lean import LeanTableClient

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.config import Settings

CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 5
RETRIES = 2  # after the first attempt
READ_RETRIES = 1  # a read timeout means a hung server or a slow write: retry it once only
BACKOFF_SECONDS = 0.2  # the second retry waits about twice as long

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
    return RequestsTransport(session=session, session_owner=False, **_timeouts())


def _timeouts() -> dict[str, Any]:
    return {"connection_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": READ_TIMEOUT_SECONDS}


class QueueRetry(ExponentialRetry):
    """The queue SDK's retry (same errors retried) with a backoff in tenths of a second."""

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return random.uniform(0.5, 1.5) * BACKOFF_SECONDS * 2 ** settings["count"]


def client_options() -> dict[str, Any]:
    """Keyword arguments for every storage client: the round-trip count, the shared transport,
    the timeouts and the bounded retries (table and queue clients each ignore the other's)."""
    options: dict[str, Any] = {
        "raw_request_hook": count_request,
        # azure-data-tables (azure-core's RetryPolicy): no wait before the first retry
        "retry_total": RETRIES,
        "retry_read": READ_RETRIES,
        "retry_backoff_factor": BACKOFF_SECONDS,
        "retry_backoff_max": 2,
        # azure-storage-queue
        "retry_policy": QueueRetry(retry_total=RETRIES, retry_read=READ_RETRIES),
        **_timeouts(),  # used where the SDK builds its own transport (a proxy is configured)
    }
    transport = _shared_transport()
    if transport is not None:
        options["transport"] = transport
    return options


def is_dev_storage(connection_string: str) -> bool:
    """`UseDevelopmentStorage=true`, read as the storage SDKs read connection strings: keys and
    values case-insensitive, spaces and a trailing `;` ignored. The app and devhost both ask here."""
    return connection_string.replace(" ", "").rstrip(";").lower() == "usedevelopmentstorage=true"


def resolve_connection_string(value: str) -> str:
    return dev_connection_string() if is_dev_storage(value) else value


@dataclass(frozen=True)
class IdentityAccount:
    """A storage account reached with an Entra ID token instead of a key."""

    table_endpoint: str
    queue_endpoint: str
    credential_kind: str = ""  # "managedidentity", or "" for DefaultAzureCredential
    client_id: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityAccount:
        name = settings.storage_account_name.strip()

        def endpoint(explicit: str, service: str) -> str:
            if explicit.strip():
                return explicit.strip().rstrip("/")
            if not name:
                raise ValueError(
                    f"AzureWebJobsStorage__accountName or AzureWebJobsStorage__{service}ServiceUri is not set"
                )
            return f"https://{name}.{service}.core.windows.net"

        return cls(
            table_endpoint=endpoint(settings.storage_table_service_uri, "table"),
            queue_endpoint=endpoint(settings.storage_queue_service_uri, "queue"),
            credential_kind=settings.storage_credential.strip().lower(),
            client_id=settings.storage_client_id.strip(),
        )

    def credential(self) -> TokenCredential:
        """Imported here: azure-identity costs ~100 ms to import, and only this mode needs it."""
        if self.credential_kind == "managedidentity":
            from azure.identity import ManagedIdentityCredential

            return ManagedIdentityCredential(client_id=self.client_id or None)
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.client_id or None)


class StorageClients:
    """Table and queue clients over one account; thread-safe, created lazily.

    `account` is a connection string (`UseDevelopmentStorage=true` included) or an
    IdentityAccount; `StorageClients.for_settings` picks the one the settings name."""

    def __init__(self, account: str | IdentityAccount) -> None:
        if isinstance(account, IdentityAccount):
            self.identity: IdentityAccount | None = account
            self.connection_string = ""
        else:
            self.identity = None
            self.connection_string = resolve_connection_string(account)
        self._tables: dict[str, LeanTableClient] = {}
        self._queues: dict[str, QueueClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> StorageClients:
        if settings.storage_connection:
            return cls(settings.storage_connection)
        return cls(IdentityAccount.from_settings(settings))

    @cached_property
    def credential(self) -> TokenCredential | None:
        """One credential for every client of the account, so tokens are fetched once."""
        return self.identity.credential() if self.identity else None

    @cached_property
    def table_service(self) -> TableServiceClient:
        if self.identity:
            return TableServiceClient(
                self.identity.table_endpoint, credential=self.credential, **client_options()
            )
        return TableServiceClient.from_connection_string(self.connection_string, **client_options())

    @cached_property
    def queue_service(self) -> QueueServiceClient:
        if self.identity:
            return QueueServiceClient(
                self.identity.queue_endpoint, credential=self.credential, **client_options()
            )
        return QueueServiceClient.from_connection_string(self.connection_string, **client_options())

    def table(self, name: str) -> LeanTableClient:
        with self._lock:
            if name not in self._tables:
                client: LeanTableClient
                if self.identity:
                    client = LeanTableClient(
                        self.identity.table_endpoint, name, credential=self.credential, **client_options()
                    )
                else:
                    built = LeanTableClient.from_connection_string(
                        self.connection_string, name, **client_options()
                    )
                    client = cast(LeanTableClient, built)  # it builds the class it is called on
                self._tables[name] = client
            return self._tables[name]

    def queue(self, name: str) -> QueueClient:
        """Messages are base64 text, the Functions host's default `messageEncoding`."""
        with self._lock:
            if name not in self._queues:
                encoding: dict[str, Any] = {
                    "message_encode_policy": TextBase64EncodePolicy(),
                    "message_decode_policy": TextBase64DecodePolicy(),
                }
                if self.identity:
                    client = QueueClient(
                        self.identity.queue_endpoint,
                        name,
                        credential=self.credential,
                        **encoding,
                        **client_options(),
                    )
                else:
                    client = QueueClient.from_connection_string(
                        self.connection_string, name, **encoding, **client_options()
                    )
                self._queues[name] = client
            return self._queues[name]
