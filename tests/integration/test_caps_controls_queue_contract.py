"""Contracts of ControlsRepository and MessageQueue: fakes and Azure adapters alike."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from shared.domain.models import AgentControls, AgentMode, ControlsUpdate, Principal
from shared.errors import ConcurrencyConflict
from shared.ports import ControlsRepository
from shared.services.controls import ControlsService
from shared.storage.clients import StorageClients
from shared.storage.memory import InMemoryControlsRepository
from shared.storage.queues import AzureMessageQueue
from shared.storage.tables.controls import TableControlsRepository
from tests.helpers import race

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["memory", "table"])
def make_controls_repo(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Each call is another instance's repository over the same store."""
    if request.param == "memory":
        shared = InMemoryControlsRepository()
        return lambda: shared
    conn = request.getfixturevalue("azurite_conn")
    name = f"controls{uuid.uuid4().hex[:12]}"
    StorageClients(conn).table(name).create_table()
    return lambda: TableControlsRepository(StorageClients(conn).table(name))


@pytest.fixture
def controls_repo(make_controls_repo) -> ControlsRepository:  # type: ignore[no-untyped-def]
    return make_controls_repo()  # type: ignore[no-any-return]


def versioned(version: int, **fields: object) -> AgentControls:
    base = {"enabled": True, "mode": AgentMode.AUTONOMOUS, "rollout_percent": 100, "version": version}
    return AgentControls.model_validate({**base, **fields})


def test_controls_round_trip_with_their_version(controls_repo: ControlsRepository) -> None:
    assert controls_repo.get() is None and controls_repo.audit_trail(10) == []
    controls = AgentControls(
        enabled=False, mode=AgentMode.SHADOW, rollout_percent=10, reason="x", updated_by="a", version=1
    )
    controls_repo.put(controls, {"by": "a", "version": 1})
    assert controls_repo.get() == controls and controls_repo.get().version == 1  # type: ignore[union-attr]
    assert controls_repo.audit_trail(10) == [{"by": "a", "version": 1}]


def test_a_change_of_a_version_already_committed_changes_nothing(controls_repo: ControlsRepository) -> None:
    controls_repo.put(versioned(1, enabled=False), {"version": 1})
    controls_repo.put(versioned(2, rollout_percent=50, enabled=False), {"version": 2})
    for stale in (versioned(2), versioned(1)):  # a lost race, an old read
        with pytest.raises(ConcurrencyConflict):
            controls_repo.put(stale, {"version": stale.version, "stale": True})
    assert controls_repo.get() == versioned(2, rollout_percent=50, enabled=False)
    assert [a["version"] for a in controls_repo.audit_trail(10)] == [2, 1]


def test_concurrent_changes_of_one_version_let_exactly_one_commit(make_controls_repo) -> None:  # type: ignore[no-untyped-def]
    repos = [make_controls_repo() for _ in range(8)]

    wins = race(lambda i: repos[i].put(versioned(1, rollout_percent=i), {"version": 1, "by": i}))
    assert wins.count(True) == 1
    assert repos[0].get().rollout_percent == wins.index(True)
    assert repos[0].audit_trail(10) == [{"version": 1, "by": wins.index(True)}]


def test_the_audit_trail_is_newest_first_and_limited(controls_repo: ControlsRepository) -> None:
    for version in range(1, 13):
        controls_repo.put(versioned(version, rollout_percent=version), {"version": version})
    assert [a["version"] for a in controls_repo.audit_trail(5)] == [12, 11, 10, 9, 8]
    assert len(controls_repo.audit_trail(100)) == 12


def test_the_longest_reasons_are_stored(make_controls_repo) -> None:  # type: ignore[no-untyped-def]
    """A reason is 1,000 characters; the audit row holds three (the change's, before, after)."""
    admin = Principal(sub="ada", roles=frozenset({"admin"}))
    defaults = AgentControls(enabled=True, mode=AgentMode.AUTONOMOUS, rollout_percent=100)
    service = ControlsService(make_controls_repo(), defaults, lambda: NOW)
    for reason in ("\x01" * 1000, "😀" * 1000, "🙂" * 1000, '"\\' * 500, "\x1f" * 1000):
        assert service.update(admin, ControlsUpdate(enabled=False, reason=reason)).reason == reason
    repo = make_controls_repo()
    assert repo.get().reason == "\x1f" * 1000
    assert repo.audit_trail(1)[0]["before"]["reason"] == '"\\' * 500


class Lockstep:
    """Makes two instances' updates read the same version before either writes: every round
    then has a lost race, which the loser must survive by re-reading and re-applying."""

    def __init__(self, repo: ControlsRepository, barrier: threading.Barrier) -> None:
        self._repo, self._barrier = repo, barrier
        self.waiting = False
        self.conflicts = 0

    def get(self) -> AgentControls | None:
        controls = self._repo.get()
        if self.waiting:
            self.waiting = False
            self._barrier.wait(timeout=30)
        return controls

    def put(self, controls: AgentControls, audit: dict[str, object]) -> None:
        try:
            self._repo.put(controls, audit)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise

    def audit_trail(self, limit: int) -> list[dict[str, object]]:
        return self._repo.audit_trail(limit)


def test_concurrent_partial_changes_are_never_lost(make_controls_repo) -> None:  # type: ignore[no-untyped-def]
    """20 rounds of `{enabled: false}` and `{rollout_percent: 50}` from two instances at once."""
    admin = Principal(sub="ada", roles=frozenset({"admin"}))
    defaults = AgentControls(enabled=True, mode=AgentMode.AUTONOMOUS, rollout_percent=100)
    barrier = threading.Barrier(2)
    wrapped = [Lockstep(make_controls_repo(), barrier) for _ in range(2)]
    services = [ControlsService(repo, defaults, lambda: NOW) for repo in wrapped]  # type: ignore[arg-type]
    changes = [{"enabled": False}, {"rollout_percent": 50}]
    with ThreadPoolExecutor(2) as pool:
        for round_ in range(20):
            services[0].update(
                admin, ControlsUpdate(enabled=True, rollout_percent=100, reason=f"reset {round_}")
            )
            for repo in wrapped:
                repo.waiting = True

            def change(i: int, round_: int = round_) -> AgentControls:
                update = ControlsUpdate.model_validate({**changes[i], "reason": f"change {round_}"})
                return services[i].update(admin, update)

            list(pool.map(change, range(2)))
            final = wrapped[0].get()
            assert final is not None and (final.enabled, final.rollout_percent) == (False, 50), round_
            reasons = [a["reason"] for a in wrapped[0].audit_trail(3)]
            assert reasons == [f"change {round_}", f"change {round_}", f"reset {round_}"]
    assert sum(repo.conflicts for repo in wrapped) == 20  # one lost race per round, each survived
    trail = wrapped[0].audit_trail(1000)
    assert [a["version"] for a in trail] == list(range(60, 0, -1))


class Sample(BaseModel):
    ticket_id: int
    text: str | None = None


def test_queue_messages_are_base64_json_and_honour_the_delay(azurite_conn: str) -> None:
    clients = StorageClients(azurite_conn)
    name = f"q{uuid.uuid4().hex[:10]}"
    clients.queue(name).create_queue()
    AzureMessageQueue(clients).send(name, Sample(ticket_id=1, text="naïve 😀" * 2000), delay_seconds=0)
    AzureMessageQueue(clients).send(name, Sample(ticket_id=2), delay_seconds=60)
    [message] = list(clients.queue(name).receive_messages(max_messages=32))
    assert json.loads(message.content) == {"ticket_id": 1, "text": "naïve 😀" * 2000}
    raw = StorageClients(azurite_conn).queue_service.get_queue_client(name)
    assert raw.get_queue_properties().approximate_message_count == 2
