"""Health's public cache and the controls' conditional update, with in-memory storage."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.container import Container
from shared.domain.models import AgentControls, AgentMode, ControlsUpdate, Principal
from shared.domain.public import AgentControlsPublic, HealthStatus
from shared.errors import ConcurrencyConflict, Conflict
from shared.services.controls import ControlsService
from shared.services.health import PUBLIC_CACHE_SECONDS, HealthService
from shared.storage.memory import InMemoryControlsRepository
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

ADMIN = Principal(sub="ada", roles=frozenset({"admin"}))
DEFAULTS = AgentControls(enabled=True, mode=AgentMode.AUTONOMOUS, rollout_percent=100)


class CountingProbe:
    def __init__(self, problem: str | None = None, gate: threading.Event | None = None) -> None:
        self.pings = 0
        self.problem = problem
        self.gate = gate
        self._lock = threading.Lock()

    def ping(self) -> str | None:
        with self._lock:
            self.pings += 1
        if self.gate is not None:
            self.gate.wait(10)
        return self.problem

    def queue_depths(self) -> dict[str, int | None]:
        return {"agent-actions": 0, "agent-actions-poison": 0}


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def health(probe: CountingProbe, ticks: Ticks, c: Container) -> HealthService:
    return HealthService(probe, c.controls, "1.2.3", "local", monotonic=ticks)


def test_anonymous_health_pings_storage_at_most_once_per_window(container: Container) -> None:
    probe, ticks = CountingProbe(), Ticks()
    container.health = health(probe, ticks, container)
    for _ in range(20):
        response = invoke("ops_health")
        assert response.status_code == 200 and payload(response) == {"status": "ok"}
    assert probe.pings == 1
    ticks.now += PUBLIC_CACHE_SECONDS - 0.01
    invoke("ops_health", headers=bearer("alice"))  # a user who is not staff gets the public report
    assert probe.pings == 1
    ticks.now += 0.01
    probe.problem = "storage unreachable"
    response = invoke("ops_health")
    assert response.status_code == 503 and payload(response) == {"status": "degraded"}
    assert probe.pings == 2 and PUBLIC_CACHE_SECONDS <= 10


def test_staff_health_is_checked_live(container: Container) -> None:
    probe, ticks = CountingProbe(), Ticks()
    container.health = health(probe, ticks, container)
    invoke("ops_health")
    for n in range(3):
        detailed = payload(invoke("ops_health", headers=bearer("sam", "staff")))
        assert detailed["storage"] == {"ok": True, "error": None} and probe.pings == 2 + n


def test_concurrent_anonymous_requests_share_one_ping(container: Container) -> None:
    gate = threading.Event()
    gate.set()
    probe, ticks = CountingProbe(gate=gate), Ticks()
    service = health(probe, ticks, container)
    service.report(None)  # a report exists; now let it expire and make storage slow
    ticks.now += PUBLIC_CACHE_SECONDS
    gate.clear()
    with ThreadPoolExecutor(16) as pool:
        reports = [pool.submit(service.report, None) for _ in range(16)]
        waiting = [r for r in reports if not _finishes(r)]
        assert len(waiting) == 1  # the one refreshing; the rest got the last report at once
        assert probe.pings == 2
        gate.set()
        assert all(r.result(timeout=10) == HealthStatus(status="ok") for r in reports)
    assert probe.pings == 2


def _finishes(future: Any) -> bool:
    try:
        future.result(timeout=2)
        return True
    except TimeoutError:
        return False


class RivalRepo(InMemoryControlsRepository):
    """Another admin's change lands between our read and our write, `rivals` times."""

    def __init__(self, rivals: int) -> None:
        super().__init__()
        self.rivals = rivals
        self.conflicts = 0

    def put(self, controls: AgentControls, audit: dict[str, Any]) -> None:
        if self.rivals:
            self.rivals -= 1
            stored = self.get() or DEFAULTS
            rival = stored.model_copy(update={"mode": AgentMode.SHADOW, "version": stored.version + 1})
            super().put(rival, {"by": "rival", "version": rival.version})
        try:
            super().put(controls, audit)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise


def test_a_change_that_loses_a_race_is_applied_again_to_the_winner() -> None:
    repo = RivalRepo(rivals=2)
    service = ControlsService(repo, DEFAULTS, lambda: datetime(2026, 11, 30, tzinfo=UTC))
    result = service.update(ADMIN, ControlsUpdate(rollout_percent=50, reason="half"))
    stored = repo.get()
    assert stored is not None and AgentControlsPublic.of(stored) == result and repo.conflicts == 2
    assert (stored.mode, stored.rollout_percent, stored.version) == (AgentMode.SHADOW, 50, 3)
    assert [a["by"] for a in repo.audit_trail(10)] == ["ada", "rival", "rival"]
    assert repo.audit_trail(1)[0]["before"]["mode"] == "shadow"  # the audit says what it changed


def test_controls_that_stay_contended_answer_409(container: Container) -> None:
    container.controls = ControlsService(RivalRepo(rivals=1000), DEFAULTS, container.clock)
    response = invoke(
        "agent_controls_put",
        "PUT",
        json_body={"enabled": False, "reason": "stop"},
        headers=bearer("ada", "admin"),
    )
    assert response.status_code == 409 and payload(response)["code"] == "conflict"
    with pytest.raises(Conflict):
        container.controls.update(ADMIN, ControlsUpdate(enabled=False, reason="stop"))


def test_the_cache_keeps_the_later_of_two_versions() -> None:
    repo, ticks = InMemoryControlsRepository(), Ticks()
    service = ControlsService(repo, DEFAULTS, lambda: datetime(2026, 11, 30, tzinfo=UTC), monotonic=ticks)
    service.update(ADMIN, ControlsUpdate(enabled=False, reason="one"))
    service.update(ADMIN, ControlsUpdate(rollout_percent=5, reason="two"))
    newer = repo.get()
    assert newer is not None
    service._remember(ticks(), newer.model_copy(update={"version": 1, "enabled": True}))
    assert service.current() == newer
