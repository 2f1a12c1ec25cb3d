"""The load run of the sharded counters (issue #11, point 4): what one partition sustains with N
concurrent writers, and how throughput grows with the number of shards.

Three counters, each driven by WRITERS threads for SECONDS per configuration, every writer with
its own clients and its own adapter object (as separate instances would be), against the run's
Azurite:

- `caps`: `TableActionCaps.try_acquire` with a fresh holder per call (every call takes a slot;
  the caps are set far above what the run can take). All shard rows of a day share one
  partition (`caps-{day}`), so this is one partition with 1, 2, 4 or 8 ETag-guarded rows; a
  writer that loses a row's ETag race reads it again and retries. Each configuration gets a day
  of its own, so rows start empty; holder lists then grow towards `MAX_HOLDERS` (800) as in a
  busy day, and the rows with them.
- `id_blocks`: `TableIdAllocator` with a block of 1 id, so every call is a block claim on the
  ETag-guarded counter row; the product claims 50 ids per block, so its ids/s is 50 x
  claims/s. The product has one such row; 2, 4 and 8 rows (writers spread over rows) show what
  sharding it would buy.
- `journal_inserts`: plain inserts of an analytics journal row's shape (#10's design: partition
  `d{day}-{shard}`, row `e-{event id}`, a few Int64 counters) into 1, 2, 4 or 8 partitions:
  inserts never conflict, so this is the store's own rate per partition. Measured on the raw
  shape; `journal_record` is the product's `AnalyticsStore.record` through its Table adapter
  (8 writers, one day), once the analytics write side is in the tree (else "pending").

Figures: completed operations per second over the whole configuration, storage round trips per
operation (retries after a lost race included: above 1 means contention), and for the cap
writers the ETag conflicts per operation. Azurite is one Node.js process and the writers share
this machine's cores with it, so absolute rates are the emulator's; what carries over to Azure is
the shape: how contention on one row costs retries, and how shards remove it (Azure's targets:
~2,000 entities/s per partition, 20,000/s per account).
"""

from __future__ import annotations

import threading
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableClient

from bench.common import SETTINGS
from shared.storage.clients import StorageClients, client_options, round_trips
from shared.storage.tables.caps import TableActionCaps
from shared.storage.tables.ids import TableIdAllocator

SHARDS = (1, 2, 4, 8)
WRITERS = 8
WRITER_SWEEP = (1, 4, 16)  # one partition, one row: how the rate changes with writers
SECONDS = 2.0
TABLE = "benchcounters"


def run_writers(
    writers: int, seconds: float, make: Callable[[int], Callable[[int], object]]
) -> dict[str, Any]:
    """`writers` threads each calling its own op (built by make(writer)) with 0, 1, 2, ... until
    `seconds` pass; the completed calls per second and round trips per call."""
    ops = [make(w) for w in range(writers)]
    counts = [0] * writers
    errors: list[str] = []
    start_line = threading.Barrier(writers + 1)
    stop = threading.Event()

    def writer(w: int) -> None:
        start_line.wait()
        n = 0
        try:
            while not stop.is_set():
                ops[w](n)
                n += 1
        except Exception as exc:  # reported, not hidden: a contended row may give up (ConcurrencyConflict)
            errors.append(type(exc).__name__)
        counts[w] = n

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    before = round_trips()
    start_line.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    done = sum(counts)
    return {
        "writers": writers,
        "ops": done,
        "per_s": round(done / elapsed, 1),
        "round_trips_per_op": round((round_trips() - before) / max(done, 1), 2),
        **({"errors": sorted(set(errors))} if errors else {}),
    }


class _ConflictCount:
    """Counts the ETag races lost (a 412 on a conditional update) by every writer."""

    def __init__(self) -> None:
        self.lost = 0
        self._lock = threading.Lock()

    def hook(self, response: Any) -> None:
        if response.http_response.status_code == 412:
            with self._lock:
                self.lost += 1


def caps_load(connection_string: str, shards: int, writers: int, day: datetime) -> dict[str, Any]:
    conflicts = _ConflictCount()

    def make(w: int) -> Callable[[int], object]:
        table = TableClient.from_connection_string(
            connection_string, TABLE, **client_options(), raw_response_hook=conflicts.hook
        )
        caps = TableActionCaps(table, per_hour=10**9, per_day=10**9, shards=shards)
        return lambda n: caps.try_acquire(day, f"{w}/{n}/{uuid.uuid4().hex[:8]}")

    return caps_figures(run_writers(writers, SECONDS, make), conflicts)


def caps_figures(result: dict[str, Any], conflicts: _ConflictCount) -> dict[str, Any]:
    result["conflicts_per_op"] = round(conflicts.lost / max(result["ops"], 1), 2)
    return result


def id_block_load(connection_string: str, rows: int, writers: int, run: str) -> dict[str, Any]:
    def make(w: int) -> Callable[[int], object]:
        table = StorageClients(connection_string).table(TABLE)
        allocator = TableIdAllocator(table, name=f"{run}-row{w % rows}", block_size=1)
        return lambda _n: allocator.next_id()

    return run_writers(writers, SECONDS, make)


def journal_load(connection_string: str, partitions: int, writers: int, day: str) -> dict[str, Any]:
    def make(w: int) -> Callable[[int], object]:
        table = StorageClients(connection_string).table(TABLE)

        def insert(n: int) -> object:
            event = f"{w}-{n}-{uuid.uuid4().hex[:8]}"
            row = {
                "PartitionKey": f"d{day}-{zlib.crc32(event.encode()) % partitions}",
                "RowKey": f"e-{event}",
                **{name: 1 for name in ("tickets", "processed", "actions_auto", "resolved", "pending")},
            }
            return table.create_entity(row)

        return insert

    return run_writers(writers, SECONDS, make)


def journal_record_load(connection_string: str, writers: int) -> dict[str, Any] | None:
    """`AnalyticsStore.record` through the product's Table adapter, when the analytics write side
    (#10) is in this tree: the container then has an `analytics` store (capability check); None
    before. Every event a new id, all on one day: the store's own sharding of the journal."""
    from collections import Counter

    from shared.config import Settings
    from shared.container import Container
    from shared.domain.tally import PROCESSED, TICKETS

    settings = Settings(AzureWebJobsStorage=connection_string, **SETTINGS)  # type: ignore[arg-type]
    if getattr(Container.for_azure(settings), "analytics", None) is None:
        return None
    day = datetime(2031, 2, 1, tzinfo=UTC).date()

    def make(w: int) -> Callable[[int], object]:
        store = Container.for_azure(settings).analytics  # type: ignore[attr-defined]
        return lambda n: store.record(f"bench-{w}-{n}", {day: Counter({TICKETS: 1, PROCESSED: 1})})

    return run_writers(writers, SECONDS, make)


def counter_load(connection_string: str) -> dict[str, Any]:
    """Every configuration of the three counters; about 30 s."""
    clients = StorageClients(connection_string)
    clients.table_service.create_table_if_not_exists(TABLE)
    try:
        day = datetime(2031, 1, 1, 12, tzinfo=UTC)
        days = iter(day + timedelta(days=n) for n in range(100))
        caps = {str(s): caps_load(connection_string, s, WRITERS, next(days)) for s in SHARDS}
        caps_sweep = {str(w): caps_load(connection_string, 1, w, next(days)) for w in WRITER_SWEEP}
        ids = {str(r): id_block_load(connection_string, r, WRITERS, f"shards{r}") for r in SHARDS}
        ids_sweep = {str(w): id_block_load(connection_string, 1, w, f"writers{w}") for w in WRITER_SWEEP}
        journal = {str(p): journal_load(connection_string, p, WRITERS, f"2031010{p}") for p in SHARDS}
        recorded = journal_record_load(connection_string, WRITERS)
    finally:
        clients.table_service.delete_table(TABLE)
    return {
        "seconds_per_configuration": SECONDS,
        "caps": {"by_shards": caps, "one_shard_by_writers": caps_sweep},
        "id_blocks": {"by_rows": ids, "one_row_by_writers": ids_sweep, "ids_per_block_in_product": 50},
        "journal_inserts": {"by_partitions": journal},
        "journal_record": recorded or "pending: no analytics store in this tree (#10)",
        "scaling": {
            name: round(figures[str(SHARDS[-1])]["per_s"] / max(figures["1"]["per_s"], 0.1), 2)
            for name, figures in (("caps", caps), ("id_blocks", ids), ("journal_inserts", journal))
        },
    }
