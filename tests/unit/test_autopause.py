"""Auto-pause with the in-memory container: more than AUTO_PAUSE_ROLLBACKS_PER_HOUR rollbacks in
the trailing hour pause the agent as `system`, audited, until an admin resumes it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.domain.models import AgentControls, ControlsUpdate, Principal, ProcessMessage
from shared.ports import RollbackTally, WindowLimit, WindowUsage
from shared.services.autopause import AutoPause
from shared.services.controls import ControlsService
from shared.storage.memory import InMemoryControlsRepository, InMemoryRollbackLog
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload
from tests.unit.test_agent_pipeline import Clock, ScriptedAgent, build, new_ticket, queued

ADMIN = Principal(sub="ada", roles=frozenset({"admin"}))
LIMIT = WindowLimit(100, 3600)
REASON = "4 rollbacks in the last hour (more than AUTO_PAUSE_ROLLBACKS_PER_HOUR=3)"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def c(clock: Clock) -> Iterator[Container]:
    container = build(None, ScriptedAgent(), clock, AUTO_PAUSE_ROLLBACKS_PER_HOUR="3")  # type: ignore[arg-type]
    use_container(container)
    yield container
    use_container(None)


def rollback(c: Container, clock: Clock, action_id: str, minutes: float = 1) -> bool:
    """What the rollback service does around its commit: reserve, then auto-pause."""
    clock.now += timedelta(minutes=minutes)
    tally = c.rollback_log.reserve(action_id, "ada", clock.now, LIMIT)
    return c.auto_pause.after_rollback(tally, clock.now)


def system_audits(c: Container) -> list[dict[str, Any]]:
    return [a for a in c.controls_repo.audit_trail(100) if a["by"] == "system"]


def test_the_rollback_past_the_threshold_pauses_the_agent_as_system(c: Container, clock: Clock) -> None:
    assert [rollback(c, clock, f"1-{i}") for i in range(3)] == [False] * 3
    assert c.controls_repo.get() is None and c.controls_repo.audit_trail(10) == []  # nothing changed
    assert rollback(c, clock, "1-3") is True
    controls = c.controls.current()
    assert not controls.enabled and controls.updated_by == "system" and controls.reason == REASON
    assert controls.updated_at == clock.now
    [audit] = c.controls_repo.audit_trail(10)
    assert audit["by"] == "system" and audit["reason"] == REASON and audit["version"] == 1
    assert audit["before"]["enabled"] is True and audit["after"]["enabled"] is False
    got = payload(invoke("agent_controls_get", headers=bearer("ada", "admin")))
    assert got["enabled"] is False and got["updated_by"] == "system" and got["reason"] == REASON


def test_a_paused_agent_defers_new_process_requests(c: Container, clock: Clock) -> None:
    for i in range(4):
        rollback(c, clock, f"1-{i}")
    tid = new_ticket(c)
    accepted = invoke("agent_process", "POST", headers=bearer("alice"), route={"id": str(tid)})
    assert accepted.status_code == 202
    [sent] = queued(c, "agent-actions")
    assert c.agent_worker.execute(ProcessMessage.model_validate(sent)) == "deferred:agent_disabled"
    assert c.tickets.get(tid).status == "open"  # type: ignore[union-attr]


def test_it_stays_paused_until_an_admin_resumes_and_the_count_restarts(c: Container, clock: Clock) -> None:
    for i in range(4):
        rollback(c, clock, f"1-{i}")
    assert [rollback(c, clock, f"2-{i}") for i in range(3)] == [False] * 3  # cleanup while paused
    assert not c.controls.current().enabled  # nothing but an admin resumes it
    clock.now += timedelta(hours=2)
    assert not c.controls.current().enabled
    resumed = invoke(
        "agent_controls_put",
        "PUT",
        json_body={"enabled": True, "reason": "fixed the KB article"},
        headers=bearer("ada", "admin"),
    )
    assert resumed.status_code == 200 and payload(resumed)["enabled"] is True
    assert [rollback(c, clock, f"3-{i}") for i in range(3)] == [False] * 3
    assert rollback(c, clock, "3-3") is True
    assert [a["reason"] for a in c.controls_repo.audit_trail(10)] == [REASON, "fixed the KB article", REASON]


def test_rollbacks_spread_over_more_than_an_hour_do_not_pause(c: Container, clock: Clock) -> None:
    assert [rollback(c, clock, f"1-{i}", minutes=25) for i in range(8)] == [False] * 8
    assert c.controls.current().enabled


def test_the_same_tally_twice_pauses_once(c: Container, clock: Clock) -> None:
    for i in range(3):
        rollback(c, clock, f"1-{i}")
    clock.now += timedelta(minutes=1)
    tally = c.rollback_log.reserve("1-3", "ada", clock.now, LIMIT)
    assert [c.auto_pause.after_rollback(tally, clock.now) for _ in range(2)] == [True, False]
    retried = c.rollback_log.reserve("1-3", "ada", clock.now, LIMIT)  # the rollback retried
    assert retried.recent == 0 and not c.auto_pause.after_rollback(retried, clock.now)
    assert len(system_audits(c)) == 1


def test_an_admins_pause_and_reason_stand(c: Container, clock: Clock) -> None:
    c.controls.update(ADMIN, ControlsUpdate(enabled=False, reason="incident 42"))
    assert [rollback(c, clock, f"1-{i}") for i in range(6)] == [False] * 6
    controls = c.controls.current()
    assert not controls.enabled and controls.reason == "incident 42" and controls.updated_by == "ada"
    assert system_audits(c) == []
    # the count restarted when it passed the threshold while paused: the 5th, the 6th and this one
    assert c.rollback_log.reserve("9-9", "ada", clock.now, LIMIT).recent == 3


def test_a_threshold_of_zero_never_pauses(clock: Clock) -> None:
    c = build(None, ScriptedAgent(), clock, AUTO_PAUSE_ROLLBACKS_PER_HOUR="0")  # type: ignore[arg-type]
    assert not any(rollback(c, clock, f"1-{i}", minutes=0) for i in range(50))
    assert c.controls.current().enabled


def test_the_container_wires_the_setting(settings: Settings, clock: Clock) -> None:
    tally = RollbackTally(WindowUsage(10, 1, 0.0), 20)
    c = Container.in_memory(settings, clock=clock)
    assert settings.auto_pause_rollbacks_per_hour == 20 and not c.auto_pause.after_rollback(tally, clock.now)
    assert c.auto_pause.after_rollback(RollbackTally(tally.usage, 21), clock.now)


def test_instances_passing_the_threshold_at_once_pause_once(clock: Clock) -> None:
    repo, log = InMemoryControlsRepository(), InMemoryRollbackLog()
    defaults = AgentControls(enabled=True, mode="autonomous", rollout_percent=100)
    instances = [AutoPause(ControlsService(repo, defaults, clock), log, 3) for _ in range(4)]
    start = threading.Barrier(16)

    def race(i: int) -> bool:
        start.wait()
        return instances[i % 4].after_rollback(RollbackTally(WindowUsage(10, 1, 0.0), 4 + i), clock.now)

    with ThreadPoolExecutor(16) as pool:
        paused = list(pool.map(race, range(16)))
    assert paused.count(True) == 1
    [audit] = repo.audit_trail(10)
    assert audit["by"] == "system" and audit["after"]["enabled"] is False and audit["version"] == 1
    assert log.reserve("1-1", "ada", clock.now + timedelta(seconds=1), LIMIT).recent == 1
