"""The throttle over both `limits` storages the app uses: memory:// (unit tests) and Table Storage."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from limits.storage import Storage, storage_from_string

from shared.errors import Throttled
from shared.services.throttle import Throttle
from shared.storage.clients import round_trips
from shared.storage.ratelimit import table_storage_uri
from shared.storage.rates import LimitsRateCounter


@pytest.fixture(params=["memory", "table"])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "memory":
        return storage_from_string("memory://")  # type: ignore[return-value]
    conn = request.getfixturevalue("azurite_conn")
    return storage_from_string(table_storage_uri(), connection_string=conn)  # type: ignore[return-value]


def limited(storage: Storage, rate: str, scope: str) -> Throttle:
    return Throttle(LimitsRateCounter(storage, rate, scope))


def test_the_quota_counts_down_then_refuses_with_retry_after(storage: Storage) -> None:
    throttle, who = limited(storage, "3/minute", "process"), uuid.uuid4().hex
    quotas = [throttle.hit(who) for _ in range(3)]
    assert [q.remaining for q in quotas] == [2, 1, 0] and all(q.limit == 3 for q in quotas)
    assert 55 < quotas[-1].reset_at - time.time() <= 60
    with pytest.raises(Throttled) as refused:
        throttle.hit(who)
    assert 1 <= refused.value.retry_after <= 60
    assert refused.value.headers["RateLimit-Remaining"] == "0"
    assert str(refused.value).startswith("You can make 3 such requests per minute; try again in ")
    assert throttle.hit(uuid.uuid4().hex).remaining == 2  # another caller has their own window


def test_concurrent_hits_admit_exactly_the_limit(storage: Storage) -> None:
    throttle, who = limited(storage, "20/minute", "process"), uuid.uuid4().hex

    def hit(_: int) -> bool:
        try:
            throttle.hit(who)
            return True
        except Throttled:
            return False

    with ThreadPoolExecutor(16) as pool:
        assert sum(pool.map(hit, range(60))) == 20


def test_a_warm_table_hit_is_one_round_trip(azurite_conn: str) -> None:
    storage = storage_from_string(table_storage_uri(), connection_string=azurite_conn)
    throttle, who = limited(storage, "50/minute", "process"), uuid.uuid4().hex  # type: ignore[arg-type]
    throttle.hit(who)
    before = round_trips()
    throttle.hit(who)
    assert round_trips() - before == 1


def test_create_and_process_quotas_are_counted_apart(storage: Storage) -> None:
    who = uuid.uuid4().hex
    create, process = limited(storage, "2/minute", "create"), limited(storage, "2/minute", "process")
    create.hit(who)
    create.hit(who)
    with pytest.raises(Throttled):
        create.hit(who)
    assert process.hit(who).remaining == 1  # creating tickets does not use up processing
