"""Every table and queue the app uses (shared/storage/names.py), created idempotently by the app itself.

The Azure host (and the local host, like Core Tools) creates nothing, so a fresh storage
account must work: each worker process creates what it needs once, before its first storage
operation (`Provisioner`), and `manage check` does the same. A few round trips per worker,
none per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import HttpResponseError, ResourceExistsError

from shared.errors import StorageUnavailable
from shared.storage.clients import StorageClients
from shared.storage.names import QUEUES, TABLES, poison

log = logging.getLogger("resolvemeq.storage")


def provision(account: str | StorageClients) -> None:
    """Create every table and queue (the trigger queues and their poison queues) that is
    missing; in parallel, so a cold worker waits one round trip rather than eleven.
    Raises the storage error of the first that fails."""
    clients = account if isinstance(account, StorageClients) else StorageClients(account)

    def create_table(name: str) -> None:
        _tolerating_no_create_right(name, lambda: clients.table_service.create_table_if_not_exists(name))

    def create_queue(name: str) -> None:
        def create() -> None:
            try:
                clients.queue(name).create_queue()
            except ResourceExistsError:
                pass

        _tolerating_no_create_right(name, create)

    queues = QUEUES + tuple(poison(q) for q in QUEUES)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="provision") as pool:
        futures = [pool.submit(create_table, t) for t in TABLES] + [
            pool.submit(create_queue, q) for q in queues
        ]
        for future in futures:
            future.result()


def _tolerating_no_create_right(name: str, create: Callable[[], object]) -> None:
    """An identity with data rights only (no right to create) may still use what an operator
    created: a 403 on create is logged and the resource assumed to exist."""
    try:
        create()
    except HttpResponseError as exc:
        if exc.status_code != 403:
            raise
        log.warning("no right to create %s (403); assuming it exists", name)


class Provisioner:
    """Runs `provision` once per process, before the first storage operation. A failure (storage
    down) is not remembered as done: the next invocation tries again. Callers that waited while
    an attempt failed get that failure at once instead of queueing behind a retry each."""

    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients
        self._lock = threading.Lock()
        self._done = False
        self._failed_at = -float("inf")

    def ensure(self) -> None:
        if self._done:
            return
        arrived = time.monotonic()
        with self._lock:
            if self._done:
                return
            if self._failed_at >= arrived:
                raise StorageUnavailable("Storage is unavailable; please try again shortly.")
            try:
                provision(self._clients)
            except Exception:
                self._failed_at = time.monotonic()
                raise
            self._done = True

    def forget(self) -> None:
        """A table or queue vanished (deleted, an emulator restarted): create again on next use."""
        self._done = False
