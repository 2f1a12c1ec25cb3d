"""A ``limits`` storage backend on Azure Table Storage (scheme ``azuretables://``).

Importing this module registers the scheme, after which::

    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    storage = storage_from_string(table_storage_uri(), connection_string=conn)  # or env AzureWebJobsStorage
    limiter = FixedWindowRateLimiter(storage)
    limiter.hit(parse("50/minute"), "user", "alice")

Each rate-limit key is one entity (PartitionKey = SHA-256 of the key, RowKey = ``"c"``) holding ``Count`` and
``ExpiresAt`` (epoch seconds). Increments are optimistic read-modify-write cycles guarded by the entity's ETag
(insert-if-absent for a new key, replace-if-not-modified otherwise), so counts are exact across threads and
processes. Only the fixed-window strategy is supported (no moving/sliding-window mixins).

The conditional write is the app's one (`write_row`, shared/storage/tables/optimistic.py); the loop around
it is not `OptimisticRow`'s, because `limits` asks for more: thousands of keys remembered per instance
(LRU), its own exception type, exponential backoff, a missing table raised at once rather than retried.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity
from limits.errors import ConfigurationError
from limits.storage import Storage

from shared.storage.clients import client_options
from shared.storage.names import RATE_LIMITS
from shared.storage.tables.optimistic import RACES, write_row

__all__ = [
    "CONNECTION_STRING_ENV",
    "DEFAULT_TABLE",
    "SCHEME",
    "AzureTableStorage",
    "RateLimitContentionError",
    "table_storage_uri",
]

SCHEME = "azuretables"
DEFAULT_TABLE = RATE_LIMITS
CONNECTION_STRING_ENV = "AzureWebJobsStorage"
ROW_KEY = "c"
DEFAULT_MAX_RETRIES = 50
SEEN_LIMIT = 10_000  # windows remembered per instance (LRU), to skip the read before a write
Window = tuple[int, float, str]  # count, end (epoch seconds), ETag
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")


class RateLimitContentionError(RuntimeError):
    """An increment lost the optimistic-concurrency race more than ``max_retries`` times in a row."""


def table_storage_uri(table: str = DEFAULT_TABLE) -> str:
    """The ``storage_from_string`` URI for a counter table; pass the connection string as an option."""
    _validate_table_name(table)
    return f"{SCHEME}://?{urllib.parse.urlencode({'table': table})}"


def partition_key_for(key: str) -> str:
    """Table keys forbid ``/ \\ # ?`` and control characters; limits keys contain ``/``. Hash them."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _validate_table_name(table: str) -> None:
    if not _TABLE_NAME.match(table):
        raise ConfigurationError(
            f"invalid Azure table name {table!r}: 3-63 alphanumerics, starting with a letter"
        )


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _table_missing(exc: BaseException) -> bool:
    """TableNotFound (the SDK does not always decode the code, so the body is looked at too)."""
    return "TableNotFound" in (str(getattr(exc, "error_code", None) or "") + str(exc))


class AzureTableStorage(Storage):
    """Fixed-window counters in an Azure Storage table, exact under concurrency via ETag-conditional writes.

    :param uri: ``azuretables://?table=NAME`` (table defaults to ``ratelimits``).
    :param connection_string: storage connection string; defaults to env ``AzureWebJobsStorage``.
    :param endpoint: instead of a connection string, the table endpoint of an account reached with
     ``credential`` (an Entra ID token credential: identity-based storage).
    :param clock: returns epoch seconds; defaults to :func:`time.time` (inject for tests).
    :param max_retries: optimistic-concurrency attempts per increment before
     :class:`RateLimitContentionError`.
    """

    STORAGE_SCHEME = [SCHEME]

    backoff_base = 0.002
    """Seconds; the retry delay ceiling doubles per lost race, and the delay is drawn uniformly below it."""
    backoff_cap = 1.0
    """Upper bound (seconds) on that ceiling."""

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        connection_string: str | None = None,
        endpoint: str | None = None,
        credential: Any = None,
        clock: Callable[[], float] | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        **options: Any,
    ) -> None:
        parsed = urllib.parse.urlparse(uri or f"{SCHEME}://")
        if parsed.scheme != SCHEME:
            raise ConfigurationError(f"not an {SCHEME}:// uri: {uri!r}")
        query = urllib.parse.parse_qs(parsed.query)
        table = str(options.pop("table", None) or (query.get("table") or [DEFAULT_TABLE])[0])
        _validate_table_name(table)
        conn = connection_string or os.environ.get(CONNECTION_STRING_ENV) or ""
        if not conn and not endpoint:
            raise ConfigurationError(
                f"{SCHEME}:// needs connection_string=... or the {CONNECTION_STRING_ENV} environment variable"
            )
        if int(max_retries) < 1:
            raise ConfigurationError("max_retries must be >= 1")
        self.table_name = table
        self.max_retries = int(max_retries)
        self._connection_string = conn
        self._endpoint, self._credential = endpoint, credential
        self._clock: Callable[[], float] = clock or time.time
        self._client_lock = threading.Lock()
        self._client: TableClient | None = None
        self._seen: OrderedDict[str, Window] = OrderedDict()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    # -- plumbing ---------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        del state["_client_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._client_lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (AzureError, RateLimitContentionError)

    @property
    def client(self) -> TableClient:
        """The storage instance's one TableClient, created (with its table) on first use."""
        client = self._client
        if client is not None:
            return client
        with self._client_lock:
            if self._client is None:
                if self._endpoint:
                    created = TableClient(
                        self._endpoint, self.table_name, credential=self._credential, **client_options()
                    )
                else:
                    created = TableClient.from_connection_string(
                        self._connection_string, self.table_name, **client_options()
                    )
                try:
                    created.create_table()
                except ResourceExistsError:
                    pass
                self._client = created
            return self._client

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _read(self, key: str) -> TableEntity | None:
        try:
            return self.client.get_entity(partition_key_for(key), ROW_KEY)
        except ResourceNotFoundError as exc:
            if _table_missing(exc):
                raise
            return None

    def _backoff(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(self.backoff_cap, self.backoff_base * (2**attempt))))

    # -- limits.storage.Storage -------------------------------------------------------------------

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the key's window (starting a new ``expiry``-second window if none is live).

        Returns the count after this increment. The write is conditional on the version this
        instance saw last, so an uncontended increment is one round trip; a lost race costs a
        read and another try.
        """
        entity = {"PartitionKey": partition_key_for(key), "RowKey": ROW_KEY, "Key": key}
        client = self.client
        for attempt in range(self.max_retries):
            if attempt:
                self._backoff(attempt)
            window = (self._remembered(key) if attempt == 0 else None) or self._read_window(key)
            now = self._clock()
            if window is None or window[1] <= now:
                count, expires_at = amount, now + expiry
            else:
                count, expires_at = window[0] + amount, window[1]
            props = {**entity, "Count": count, "ExpiresAt": float(expires_at)}
            try:
                etag = write_row(client, props, None if window is None else window[2])
            except RACES as exc:
                if _table_missing(exc):
                    raise  # not a race: the table is gone, and retrying cannot bring it back
                continue  # created, changed or cleared since we looked: look again
            except HttpResponseError as exc:
                if _status(exc) in (404, 409, 412) and not _table_missing(exc):
                    continue
                raise
            self._remember(key, (count, expires_at, etag))
            return count
        raise RateLimitContentionError(
            f"rate-limit counter {key!r} in table {self.table_name!r}: "
            f"gave up after {self.max_retries} conflicting attempts"
        )

    def _read_window(self, key: str) -> Window | None:
        entity = self._read(key)
        if entity is None:
            return None
        return int(entity["Count"]), float(entity["ExpiresAt"]), str(entity.metadata["etag"])

    def _remembered(self, key: str) -> Window | None:
        with self._client_lock:
            return self._seen.get(key)

    def _remember(self, key: str, window: Window) -> None:
        with self._client_lock:
            self._seen[key] = window
            self._seen.move_to_end(key)
            while len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)

    def get(self, key: str) -> int:
        entity = self._read(key)
        if entity is None or float(entity["ExpiresAt"]) <= self._clock():
            return 0
        return int(entity["Count"])

    def get_expiry(self, key: str) -> float:
        """End of the key's current window (epoch seconds); now if it has no live window.
        A window's end never moves, so one this instance saw is answered without a read."""
        window = self._remembered(key)
        now = self._clock()
        if window is not None and window[1] > now:
            return window[1]
        entity = self._read(key)
        if entity is None or float(entity["ExpiresAt"]) <= now:
            return now
        return float(entity["ExpiresAt"])

    def check(self) -> bool:
        """One cheap query against the table (creating it on first use); False on any failure."""
        try:
            pages = self.client.list_entities(results_per_page=1, select=["PartitionKey"]).by_page()
            next(iter(pages), None)
            return True
        except Exception:
            return False

    def _forget(self, key: str | None = None) -> None:
        """Drop what this instance remembers of a window (every window when `key` is None): a
        cleared window's end is no longer its end, and `get_expiry` answers from memory."""
        with self._client_lock:
            if key is None:
                self._seen.clear()
            else:
                self._seen.pop(key, None)

    def reset(self) -> int | None:
        """Delete every counter in the table; returns how many were deleted."""
        client = self.client
        deleted = 0
        try:
            for entity in client.query_entities(
                "RowKey eq @row", parameters={"row": ROW_KEY}, select=["PartitionKey", "RowKey"]
            ):
                client.delete_entity(entity["PartitionKey"], entity["RowKey"])
                deleted += 1
        finally:
            self._forget()  # after the deletes: a window remembered in between is a new one
        return deleted

    def clear(self, key: str) -> None:
        try:
            self.client.delete_entity(partition_key_for(key), ROW_KEY)  # absent key: no error
        finally:
            self._forget(key)
