"""AzureTableStorage (limits backend on Table Storage) against a private Azurite: exact counts, no mocks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError
from limits import parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from devhost import azurite
from shared.storage.ratelimit import (
    AzureTableStorage,
    RateLimitContentionError,
    partition_key_for,
    table_storage_uri,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def conn() -> Iterator[str]:
    server = azurite.start()
    try:
        yield server.connection_string
    finally:
        server.stop()


def _table() -> str:
    return "rl" + uuid.uuid4().hex[:16]


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_incr_get_expiry_clear_and_window_rollover(conn: str) -> None:
    clock = FakeClock()
    s = AzureTableStorage(table_storage_uri(_table()), connection_string=conn, clock=clock)
    key = "LIMITER/user/alice/50/1/minute"  # real limits keys contain '/'

    assert s.get(key) == 0
    assert s.get_expiry(key) == clock.now
    assert s.incr(key, 60) == 1
    assert s.incr(key, 60) == 2
    assert s.incr(key, 60, amount=5) == 7
    assert s.get(key) == 7
    assert s.get_expiry(key) == 1_700_000_060.0

    clock.now += 59.9  # still inside the window; a later incr does not extend it
    assert s.incr(key, 60) == 8
    assert s.get_expiry(key) == 1_700_000_060.0

    clock.now = 1_700_000_060.0  # window end is exclusive: expired
    assert s.get(key) == 0
    assert s.get_expiry(key) == clock.now
    assert s.incr(key, 60, amount=3) == 3  # fresh window, starting now
    assert s.get_expiry(key) == 1_700_000_120.0

    other = "LIMITER/user/bob/50/1/minute"
    assert s.incr(other, 10) == 1
    s.clear(key)
    assert s.get(key) == 0
    s.clear(key)  # clearing an absent key is fine
    assert s.get(other) == 1
    assert s.incr(key, 60) == 1


def test_reset_check_and_entity_layout(conn: str) -> None:
    s = AzureTableStorage(table_storage_uri(_table()), connection_string=conn)
    assert s.check() is True
    for i in range(3):
        s.incr(f"k/{i}", 60)
    raw = s.client.get_entity(partition_key_for("k/1"), "c")
    assert raw["Count"] == 1 and raw["Key"] == "k/1" and isinstance(raw["ExpiresAt"], float)
    assert "/" not in raw["PartitionKey"]
    assert s.reset() == 3
    assert [s.get(f"k/{i}") for i in range(3)] == [0, 0, 0]
    assert s.reset() == 0


def test_storage_from_string_registers_scheme(conn: str) -> None:
    table = _table()
    s = storage_from_string(f"azuretables://?table={table}", connection_string=conn)
    assert type(s) is AzureTableStorage
    assert s.table_name == table
    assert table_storage_uri() == "azuretables://?table=ratelimits"


def test_connection_string_defaults_to_env(conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", conn)
    s = storage_from_string(table_storage_uri(_table()))
    assert s.incr("x", 60) == 1


def test_lost_races_are_retried(conn: str) -> None:
    """Force a conflicting write between our read and our write (the clock runs in that gap)."""
    table = _table()
    rival = AzureTableStorage(table_storage_uri(table), connection_string=conn)
    interfere = {"n": 2}

    def clock() -> float:
        if interfere["n"]:
            interfere["n"] -= 1
            rival.incr("k", 60)
        return time.time()

    s = AzureTableStorage(table_storage_uri(table), connection_string=conn, clock=clock)
    # attempt 1: saw no entity, rival creates it first -> 409
    # attempt 2: rival bumps it between our read and write -> 412; attempt 3 wins
    assert s.incr("k", 60) == 3
    assert s.get("k") == 3

    interfere["n"] = 1
    once = AzureTableStorage(table_storage_uri(table), connection_string=conn, clock=clock, max_retries=1)
    with pytest.raises(RateLimitContentionError):
        once.incr("k", 60)
    assert s.get("k") == 4  # only the rival's write landed

    interfere["n"] = 1
    wrapped = AzureTableStorage(
        table_storage_uri(table), connection_string=conn, clock=clock, max_retries=1, wrap_exceptions=True
    )
    with pytest.raises(StorageError):
        wrapped.incr("k", 60)


def test_fixed_window_exact_across_200_threads(conn: str) -> None:
    storage = AzureTableStorage(table_storage_uri(_table()), connection_string=conn)
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("50/minute")
    n = 200
    barrier = threading.Barrier(n)

    def hit(_: int) -> bool:
        barrier.wait()
        return limiter.hit(limit, "user", "alice")

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(hit, range(n)))

    assert sum(results) == 50
    assert storage.get(limit.key_for("user", "alice")) == n  # every hit counted exactly once
    assert limiter.hit(limit, "user", "alice") is False


WORKER = """
import json, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
import shared.storage.clients as clients
import shared.storage.ratelimit as rl

# What is tested is exactness: a loaded machine's emulator answering 200 writers slower than the
# product's 5 s read timeout would fail the run for a reason the test is not about.
clients.READ_TIMEOUT_SECONDS = 60
conn, table, start_at, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
limiter = FixedWindowRateLimiter(storage_from_string(rl.table_storage_uri(table), connection_string=conn))
limit = parse("50/minute")
limiter.storage.check()  # create client and table before the start line
barrier = threading.Barrier(n)

def hit(_):
    barrier.wait()
    return limiter.hit(limit, "user", "alice")

time.sleep(max(0.0, start_at - time.time()))
t0 = time.time()
with ThreadPoolExecutor(max_workers=n) as pool:
    results = list(pool.map(hit, range(n)))
print(json.dumps({"admitted": sum(results), "t0": t0, "t1": time.time()}))
"""


def test_fixed_window_exact_across_two_processes(conn: str) -> None:
    table = _table()
    AzureTableStorage(table_storage_uri(table), connection_string=conn).check()  # table exists up front
    start_at = time.time() + 6  # both interpreters are up and ready well before this
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, conn, table, str(start_at), "100"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=150)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))

    assert outs[0]["t0"] < outs[1]["t1"] and outs[1]["t0"] < outs[0]["t1"], "the two bursts did not overlap"
    assert outs[0]["admitted"] + outs[1]["admitted"] == 50
    s = AzureTableStorage(table_storage_uri(table), connection_string=conn)
    assert s.get(parse("50/minute").key_for("user", "alice")) == 200


def test_clear_and_reset_forget_the_windows_this_instance_remembers(conn: str) -> None:
    """A cleared window has no end any more: RateLimit-Reset must not keep counting down to it."""
    clock = FakeClock()
    s = AzureTableStorage(table_storage_uri(_table()), connection_string=conn, clock=clock)
    key, other = "LIMITER/create/alice/30/1/minute", "LIMITER/create/bob/30/1/minute"
    s.incr(key, 60)
    s.incr(other, 60)
    clock.now += 20
    s.clear(key)
    assert s.get_expiry(key) == clock.now  # no live window, like every other backend
    assert s.incr(key, 60) == 1 and s.get_expiry(key) == clock.now + 60  # a fresh one, from now
    assert s.get_expiry(other) == clock.now + 40  # bob's window is untouched

    clock.now += 5
    assert s.reset() == 2
    assert s.get_expiry(key) == clock.now and s.get_expiry(other) == clock.now
    assert s.incr(other, 60) == 1 and s.get_expiry(other) == clock.now + 60


def test_a_failed_clear_still_forgets_the_window(conn: str) -> None:
    clock = FakeClock()
    s = AzureTableStorage(table_storage_uri(_table()), connection_string=conn, clock=clock)
    s.incr("k", 60)
    real = s.client
    real.delete_entity(partition_key_for("k"), "c")  # cleared, and then the clear we ask for fails

    class Unreachable:
        def delete_entity(self, *args: object, **kwargs: object) -> None:
            raise ServiceRequestError("storage unreachable")

    s._client = Unreachable()  # type: ignore[assignment]
    with pytest.raises(ServiceRequestError):
        s.clear("k")
    s._client = real
    assert s.get_expiry("k") == clock.now  # read again, not answered from memory
