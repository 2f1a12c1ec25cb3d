"""The agent pipeline with in-memory storage: process requests, gates, caps, exactly-once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.domain.analysis import Analysis
from shared.domain.due import DueItem
from shared.domain.models import (
    AgentMode,
    ControlsUpdate,
    Principal,
    ProcessMessage,
    TicketCreate,
)
from shared.errors import AgentUnavailable
from shared.storage.memory import InMemoryDueIndex, InMemoryMessageQueue
from tests.conftest import SECRET, bearer
from tests.unit.http_client import invoke, payload

ALICE = Principal(sub="alice")
ADMIN = Principal(sub="ada", roles=frozenset({"admin"}))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class ScriptedAgent:
    """Answers with a fixed analysis, or fails like an unreachable service."""

    def __init__(self, confidence: float = 0.9, action: str = "auto_resolve", severity: str = "low") -> None:
        self.answer: dict[str, Any] | None = {
            "confidence": confidence,
            "recommended_action": action,
            "reasoning": "Matches 'Password reset'.",
            "analysis": {"severity": severity, "category": "account", "suggested_team": "identity"},
            "solution": {
                "steps": ["Use the reset portal"],
                "estimated_time": "5 minutes",
                "success_probability": 0.9,
            },
            "knowledge_base_entries": ["kb-password-reset"],
            "agent": {"kind": "scripted", "version": "1"},
        }
        self.calls = 0

    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        self.calls += 1
        if self.answer is None:
            raise AgentUnavailable("connection error")
        return Analysis.model_validate(self.answer)


class RecordingTelemetry:
    def __init__(self) -> None:
        self.actions: list[tuple[Any, ...]] = []

    def action(self, *args: Any) -> None:
        self.actions.append(args)


@pytest.fixture
def agent() -> ScriptedAgent:
    return ScriptedAgent()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def build(settings: Settings, agent: ScriptedAgent, clock: Clock, **env: Any) -> Container:
    s = Settings(AUTH_JWT_SECRET=SECRET, **env) if env else settings  # type: ignore[call-arg]
    return Container.in_memory(s, clock=clock, analyser=agent, telemetry=RecordingTelemetry())


@pytest.fixture
def c(settings: Settings, agent: ScriptedAgent, clock: Clock) -> Iterator[Container]:
    container = build(settings, agent, clock)
    use_container(container)
    yield container
    use_container(None)


def new_ticket(c: Container, owner: Principal = ALICE) -> int:
    return c.ticket_service.create(
        owner, TicketCreate(issue_type="Reset password", description="forgot it")
    ).id


def message(ticket_id: int, request_id: str = "req1", force: bool = False) -> ProcessMessage:
    return ProcessMessage(ticket_id=ticket_id, request_id=request_id, requested_by="alice", force=force)


def history(c: Container, ticket_id: int) -> list[Any]:
    return c.tickets.history(ticket_id, 100, None).results


def queued(c: Container, queue: str) -> list[dict[str, Any]]:
    assert isinstance(c.queue, InMemoryMessageQueue)
    return c.queue.messages(queue)


def due_items(c: Container) -> list[tuple[str, int, int, datetime]]:
    assert isinstance(c.due, InMemoryDueIndex)
    return [(i.kind.value, i.ticket_id, i.seq, i.due_at) for i in c.due.items()]


DELAY = timedelta(seconds=86400)  # FOLLOWUP_DELAY_SECONDS by default


def test_auto_resolve_changes_the_ticket_records_provenance_and_schedules_the_followup(
    c: Container, clock: Clock
) -> None:
    tid = new_ticket(c)
    assert c.agent_worker.execute(message(tid)) == "AUTO_RESOLVE"
    ticket = c.tickets.get(tid)
    assert ticket.status == "resolved" and ticket.agent_processed  # type: ignore[union-attr]
    assert ticket.resolution.outcome == "pending"  # type: ignore[union-attr]
    [entry] = history(c, tid)
    assert entry.action_type == "AUTO_RESOLVE" and entry.executed_by == "autonomous_agent"
    assert entry.confidence_score == 0.9 and entry.agent_reasoning == "Matches 'Password reset'."
    assert entry.before_state["status"] == "new" and entry.after_state["status"] == "resolved"
    assert entry.action_params["agent"] == {"kind": "scripted", "version": "1"}
    assert entry.action_params["knowledge_base_entries"] == ["kb-password-reset"]
    assert entry.rollback_possible
    # the follow-up is a due item (the sweeper sends it when due), no delayed queue message
    assert due_items(c) == [("followup", tid, 2, clock.now + DELAY)]
    assert queued(c, "followups") == []
    assert c.telemetry.actions == [(tid, "AUTO_RESOLVE", 0.9, "high", "AUTO_RESOLVE")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("confidence", "action", "severity", "expected", "status"),
    [
        (0.9, "escalate", "critical", "ESCALATE", "escalated"),
        (0.9, "assign_to_team", "low", "ASSIGN_TO_TEAM", "assigned"),
        (0.3, "auto_resolve", "low", "REQUEST_CLARIFICATION", "pending_clarification"),
        (0.7, "auto_resolve", "low", "SCHEDULE_FOLLOWUP", "in_progress"),
    ],
)
def test_each_action_sets_its_status(
    c: Container,
    agent: ScriptedAgent,
    confidence: float,
    action: str,
    severity: str,
    expected: str,
    status: str,
) -> None:
    agent.answer = {**agent.answer, "confidence": confidence, "recommended_action": action}  # type: ignore[dict-item]
    agent.answer["analysis"] = {"severity": severity, "suggested_team": "security"}
    tid = new_ticket(c)
    assert c.agent_worker.execute(message(tid)) == expected
    ticket = c.tickets.get(tid)
    assert ticket.status == status  # type: ignore[union-attr]
    [entry] = history(c, tid)
    if expected == "ESCALATE":
        assert ticket.priority == "critical" and ticket.assigned_team == "security"  # type: ignore[union-attr]
    if expected == "ASSIGN_TO_TEAM":
        assert ticket.assigned_team == "security"  # type: ignore[union-attr]
    if expected == "REQUEST_CLARIFICATION":
        assert entry.action_params["questions"]
    if expected == "SCHEDULE_FOLLOWUP":
        assert due_items(c) == [("check", tid, 2, datetime(2026, 11, 29, 10, 0, tzinfo=UTC))]
        assert queued(c, "agent-checks") == []
    else:
        assert due_items(c) == []


def test_the_same_message_three_times_acts_once(c: Container, agent: ScriptedAgent) -> None:
    tid = new_ticket(c)
    outcomes = [c.agent_worker.execute(message(tid)) for _ in range(3)]
    assert outcomes == ["AUTO_RESOLVE", "duplicate", "duplicate"]
    assert len(history(c, tid)) == 1 and agent.calls == 1


def test_a_live_claim_puts_the_delivery_back_until_the_claim_expires(c: Container, clock: Clock) -> None:
    tid = new_ticket(c)
    from shared.domain.models import RequestRecord

    held = RequestRecord(request_id="req1", status="INPROGRESS", expires_at=clock.now + timedelta(seconds=50))
    c.ledger.claim(tid, held, None)
    current, delays = message(tid), []
    while (outcome := c.agent_worker.execute(current)) == "waiting":  # no exception: no dequeue burnt
        queue, again, delay = c.queue.sent[-1]  # type: ignore[attr-defined]
        assert queue == "agent-actions" and again["request_id"] == "req1"
        assert history(c, tid) == []
        delays.append(delay)
        clock.now += timedelta(seconds=delay)
        current = ProcessMessage.model_validate(again)
    assert outcome == "AUTO_RESOLVE" and delays == [30, 21]


def test_the_claim_outlives_the_hosts_function_timeout(settings: Settings) -> None:
    import json
    from pathlib import Path

    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    assert settings.agent_claim_seconds > hours * 3600 + minutes * 60 + seconds


def test_a_killed_workers_claim_expires_and_is_taken_over(c: Container, clock: Clock) -> None:
    tid = new_ticket(c)
    from shared.domain.models import RequestRecord

    dead = RequestRecord(
        request_id="req1", status="INPROGRESS", expires_at=clock.now + timedelta(seconds=120)
    )
    c.ledger.claim(tid, dead, None)
    clock.now += timedelta(seconds=121)
    assert c.agent_worker.execute(message(tid)) == "AUTO_RESOLVE"
    assert len(history(c, tid)) == 1


def test_a_failure_mid_action_releases_the_claim_and_changes_nothing(
    c: Container, agent: ScriptedAgent
) -> None:
    tid = new_ticket(c)
    agent.answer = {"confidence": "not-a-number"}  # the worker crashes deciding
    with pytest.raises(ValueError):
        c.agent_worker.execute(message(tid))
    assert c.tickets.get(tid).version == 1  # type: ignore[union-attr]
    assert c.tickets.get_with_request(tid, "req1")[1] is None
    agent.answer = ScriptedAgent().answer
    assert c.agent_worker.execute(message(tid)) == "AUTO_RESOLVE"


def test_agent_service_down_is_retried_with_backoff_then_deferred_without_error_text(
    c: Container, agent: ScriptedAgent
) -> None:
    agent.answer = None
    tid = new_ticket(c)
    current, delays = message(tid), []
    while (outcome := c.agent_worker.execute(current)) == "retrying":
        _, again, delay = c.queue.sent[-1]  # type: ignore[attr-defined]
        delays.append(delay)
        current = ProcessMessage.model_validate(again)
        assert history(c, tid) == [] and c.tickets.get_with_request(tid, "req1")[1] is None
    assert outcome == "deferred:agent_unavailable" and delays == [30, 60, 120]
    ticket = c.tickets.get(tid)
    assert ticket.status == "open" and ticket.agent is None  # type: ignore[union-attr]
    [entry] = history(c, tid)
    assert entry.action_type == "DEFER_TO_HUMAN" and entry.action_params["reason"] == "agent_unavailable"
    assert "connection" not in str(entry.model_dump())


def test_a_short_agent_outage_does_not_defer_the_ticket(c: Container, agent: ScriptedAgent) -> None:
    answer, agent.answer = agent.answer, None
    tid = new_ticket(c)
    assert c.agent_worker.execute(message(tid)) == "retrying"
    agent.answer = answer
    _, again, _ = c.queue.sent[-1]  # type: ignore[attr-defined]
    assert c.agent_worker.execute(ProcessMessage.model_validate(again)) == "AUTO_RESOLVE"


def test_kill_switch_defers_and_records_why(c: Container) -> None:
    c.controls.update(ADMIN, ControlsUpdate(enabled=False, reason="incident"))
    tid = new_ticket(c)
    assert c.agent_worker.execute(message(tid)) == "deferred:agent_disabled"
    [entry] = history(c, tid)
    assert entry.action_params["decided_action"] == "AUTO_RESOLVE" and entry.executed_by == "system"
    assert c.tickets.get(tid).status == "open"  # type: ignore[union-attr]


def test_shadow_mode_records_the_decision_and_changes_nothing(c: Container) -> None:
    c.controls.update(ADMIN, ControlsUpdate(mode=AgentMode.SHADOW, reason="trial"))
    tid = new_ticket(c)
    before = c.tickets.get(tid)
    assert c.agent_worker.execute(message(tid)) == "shadow"
    after = c.tickets.get(tid)
    assert after.state() == before.state() and after.agent is None  # type: ignore[union-attr]
    [entry] = history(c, tid)
    assert entry.action_type == "SHADOW_DECISION" and entry.action_params["would_do"] == "AUTO_RESOLVE"
    assert queued(c, "followups") == [] and due_items(c) == []


def test_rollout_gates_by_a_stable_hash(c: Container) -> None:
    from shared.domain.rollout import in_rollout

    c.controls.update(ADMIN, ControlsUpdate(rollout_percent=10, reason="canary"))
    ids = [new_ticket(c) for _ in range(40)]
    outcomes = {tid: c.agent_worker.execute(message(tid)) for tid in ids}
    for tid, outcome in outcomes.items():
        assert (outcome == "AUTO_RESOLVE") == in_rollout(tid, 10)
        assert outcome in ("AUTO_RESOLVE", "deferred:outside_rollout")


def test_hourly_cap_defers_the_rest(settings: Settings, agent: ScriptedAgent, clock: Clock) -> None:
    c = build(settings, agent, clock, MAX_AUTONOMOUS_ACTIONS_PER_HOUR=3)
    outcomes = [c.agent_worker.execute(message(new_ticket(c))) for _ in range(5)]
    assert outcomes == ["AUTO_RESOLVE"] * 3 + ["deferred:hourly_cap_reached"] * 2
    clock.now += timedelta(hours=1)
    assert c.agent_worker.execute(message(new_ticket(c))) == "AUTO_RESOLVE"


def test_a_human_change_during_the_analysis_is_not_overwritten(c: Container, agent: ScriptedAgent) -> None:
    tid = new_ticket(c)
    staff = Principal(sub="sam", roles=frozenset({"staff"}))
    original = agent.analyse

    def analyse_while_staff_escalates(ticket: dict[str, Any]) -> Analysis:
        from shared.domain.models import Status, StatusChange

        c.ticket_service.change_status(staff, tid, StatusChange(status=Status.ESCALATED))
        return original(ticket)

    agent.analyse = analyse_while_staff_escalates  # type: ignore[method-assign]
    queued_message = message(tid).model_copy(update={"ticket": c.tickets.get(tid), "ticket_version": 1})
    assert c.agent_worker.execute(queued_message) == "superseded"
    assert [e.action_type for e in history(c, tid)] == ["STATUS_CHANGE"]
    assert c.tickets.get(tid).status == "escalated"  # type: ignore[union-attr]
    assert c.caps.usage(c.clock()) == (0, 0)  # the slot it took was given back
    assert c.agent_worker.execute(queued_message) == "duplicate"  # a redelivery does not analyse again


def test_losers_of_a_race_give_their_cap_slots_back(
    settings: Settings, agent: ScriptedAgent, clock: Clock
) -> None:
    c = build(settings, agent, clock, MAX_AUTONOMOUS_ACTIONS_PER_HOUR=4)
    tid = new_ticket(c)
    snapshot = c.tickets.get(tid)
    racing = [
        message(tid, f"req{i}").model_copy(update={"ticket": snapshot, "ticket_version": 1})
        for i in range(10)
    ]
    outcomes = [c.agent_worker.execute(m) for m in racing]
    assert outcomes == ["AUTO_RESOLVE"] + ["skipped"] * 9
    assert c.caps.usage(clock()) == (1, 1)
    others = [c.agent_worker.execute(message(new_ticket(c), f"other{i}")) for i in range(4)]
    assert others == ["AUTO_RESOLVE"] * 3 + ["deferred:hourly_cap_reached"]


def test_a_failed_commit_keeps_its_slot_for_the_retry_of_the_same_request(
    settings: Settings, agent: ScriptedAgent, clock: Clock
) -> None:
    from shared.storage.memory import InMemoryTicketRepository

    class FlakyTickets(InMemoryTicketRepository):
        fail_next = False

        def save(self, *args: Any, **kwargs: Any) -> None:
            if self.fail_next:
                self.fail_next = False
                raise TimeoutError("storage timed out; the commit may or may not have happened")
            super().save(*args, **kwargs)

    tickets = FlakyTickets()
    c = Container.in_memory(
        Settings(AUTH_JWT_SECRET=SECRET, MAX_AUTONOMOUS_ACTIONS_PER_HOUR=1),  # type: ignore[call-arg]
        clock=clock,
        analyser=agent,
        tickets=tickets,
        telemetry=RecordingTelemetry(),
    )
    tid = new_ticket(c)
    tickets.fail_next = True
    for _ in range(3):  # retried, each time failing before the commit lands
        with pytest.raises(TimeoutError):
            c.agent_worker.execute(message(tid))
        tickets.fail_next = True
    tickets.fail_next = False
    assert c.caps.usage(clock()) == (1, 1)
    assert c.agent_worker.execute(message(tid)) == "AUTO_RESOLVE"  # the retry reuses its slot
    assert c.caps.usage(clock()) == (1, 1)


def test_people_hold_tickets_the_agent_must_not_touch(c: Container) -> None:
    from shared.domain.models import Status, StatusChange

    tid = new_ticket(c)
    staff = Principal(sub="sam", roles=frozenset({"staff"}))
    c.ticket_service.change_status(staff, tid, StatusChange(status=Status.ESCALATED, reason="mine"))
    refused = process(tid, bearer("alice"))
    assert refused.status_code == 409 and payload(refused)["code"] == "status_locked"
    assert queued(c, "agent-actions") == [] and c.tickets.get(tid).status == "escalated"  # type: ignore[union-attr]
    assert process(tid, bearer("sam", "staff"), {"force": True}).status_code == 202


def test_shadow_decisions_are_recorded_once_per_ticket_version(c: Container, agent: ScriptedAgent) -> None:
    c.controls.update(ADMIN, ControlsUpdate(mode=AgentMode.SHADOW, reason="trial"))
    tid = new_ticket(c)
    assert c.agent_worker.execute(message(tid, "a")) == "shadow"
    assert c.agent_worker.execute(message(tid, "b")) == "skipped"
    assert agent.calls == 1 and len(history(c, tid)) == 1


def test_processed_tickets_are_skipped_unless_forced(c: Container) -> None:
    tid = new_ticket(c)
    c.agent_worker.execute(message(tid))
    assert c.agent_worker.execute(message(tid, "req2")) == "skipped"
    assert c.agent_worker.execute(message(tid, "req3", force=True)) in ("AUTO_RESOLVE", "SCHEDULE_FOLLOWUP")


def test_followup_check_escalates_only_if_still_unresolved(c: Container, agent: ScriptedAgent) -> None:
    agent.answer = {**agent.answer, "confidence": 0.7}  # type: ignore[dict-item]
    tid = new_ticket(c)
    c.agent_worker.execute(message(tid))
    assert c.check_service.run(tid, 2) == "escalated"
    assert c.tickets.get(tid).status == "escalated"  # type: ignore[union-attr]
    assert c.check_service.run(tid, 2) == "not_needed"


# ---- through the HTTP adapter -------------------------------------------------------------


def process(tid: int, headers: dict[str, str], body: Any = None) -> Any:
    return invoke("agent_process", "POST", json_body=body, headers=headers, route={"id": str(tid)})


def test_process_endpoint_queues_throttles_and_skips(c: Container) -> None:
    tickets = [new_ticket(c) for _ in range(55)]
    alice = bearer("alice")
    responses = [process(t, alice) for t in tickets]
    assert [r.status_code for r in responses] == [202] * 50 + [429] * 5
    first = payload(responses[0])
    assert first["status"] == "queued" and first["ticket_id"] == tickets[0] and first["request_id"]
    assert (
        responses[0].headers["RateLimit-Limit"] == "50"
        and responses[49].headers["RateLimit-Remaining"] == "0"
    )
    refused = responses[-1]
    assert int(refused.headers["Retry-After"]) >= 1 and payload(refused)["code"] == "throttled"
    assert len(queued(c, "agent-actions")) == 50


def test_process_endpoint_hides_others_tickets_and_reserves_force_for_staff(c: Container) -> None:
    tid = new_ticket(c)
    assert process(tid, bearer("bob")).status_code == 404
    assert process(tid, bearer("bob"), {"force": True}).status_code == 404
    assert process(tid, bearer("alice"), {"forse": True}).status_code == 400
    c.agent_worker.execute(message(tid))
    # A user's force (the web client sends it on every "Analyze Now") is ignored, never a 403:
    for body in (None, {"force": True}):
        skipped = process(tid, bearer("alice"), body)
        assert skipped.status_code == 200 and payload(skipped)["status"] == "skipped"
    assert queued(c, "agent-actions") == []
    assert process(tid, bearer("sam", "staff"), {"force": True}).status_code == 202
    assert len(queued(c, "agent-actions")) == 1
    assert queued(c, "agent-actions")[0]["force"] is True


def test_a_users_force_never_forces_a_ticket_people_hold(c: Container) -> None:
    tid = new_ticket(c)
    changed = invoke(
        "tickets_status",
        "POST",
        json_body={"status": "escalated"},
        headers=bearer("sam", "staff"),
        route={"id": str(tid)},
    )
    assert changed.status_code == 200
    locked = process(tid, bearer("alice"), {"force": True})
    assert locked.status_code == 409 and payload(locked)["code"] == "status_locked"
    assert queued(c, "agent-actions") == []
    assert process(tid, bearer("sam", "staff"), {"force": True}).status_code == 202


def test_controls_are_admin_only_validated_and_audited(c: Container) -> None:
    assert invoke("agent_controls_get", headers=bearer("sam", "staff")).status_code == 403
    got = payload(invoke("agent_controls_get", headers=bearer("ada", "admin")))
    assert got["enabled"] is True and got["mode"] == "autonomous" and got["rollout_percent"] == 100
    for bad in ({"enabled": False}, {"rollout_percent": 101, "reason": "x"}, {"mode": "yolo", "reason": "x"}):
        response = invoke("agent_controls_put", "PUT", json_body=bad, headers=bearer("ada", "admin"))
        assert response.status_code == 400
    changed = invoke(
        "agent_controls_put",
        "PUT",
        json_body={"enabled": False, "reason": "incident 42"},
        headers=bearer("ada", "admin"),
    )
    body = payload(changed)
    assert changed.status_code == 200 and body["enabled"] is False and body["updated_by"] == "ada"
    assert body["reason"] == "incident 42" and body["rollout_percent"] == 100
    [audit] = c.controls_repo.audit  # type: ignore[attr-defined]
    assert audit["before"]["enabled"] is True and audit["after"]["enabled"] is False and audit["by"] == "ada"


def test_controls_reach_other_instances_within_the_cache_window(settings: Settings) -> None:
    from shared.domain.models import AgentControls
    from shared.services.controls import CACHE_SECONDS, ControlsService
    from shared.storage.memory import InMemoryControlsRepository

    repo, ticks = InMemoryControlsRepository(), [0.0]
    defaults = AgentControls(enabled=True, mode="autonomous", rollout_percent=100)
    here = ControlsService(repo, defaults, Clock(), monotonic=lambda: ticks[0])
    there = ControlsService(repo, defaults, Clock(), monotonic=lambda: ticks[0])
    assert there.current().enabled
    here.update(ADMIN, ControlsUpdate(enabled=False, reason="stop"))
    ticks[0] += CACHE_SECONDS
    assert not there.current().enabled and CACHE_SECONDS < 10


def test_a_slow_worker_whose_claim_was_taken_over_does_not_act_twice(
    c: Container, agent: ScriptedAgent, clock: Clock
) -> None:
    tid = new_ticket(c)
    original, inner = agent.analyse, []

    def slow_analyse(ticket: dict[str, Any]) -> dict[str, Any]:
        if not inner:  # while the first worker thinks, its claim expires and a redelivery runs
            inner.append("running")
            clock.now += timedelta(seconds=c.settings.agent_claim_seconds + 1)
            inner[0] = c.agent_worker.execute(message(tid, force=True))
        return original(ticket)

    agent.analyse = slow_analyse  # type: ignore[method-assign]
    assert c.agent_worker.execute(message(tid, force=True)) == "duplicate"
    assert inner == ["AUTO_RESOLVE"] and len(history(c, tid)) == 1


def test_a_due_index_that_fails_before_the_commit_commits_nothing_and_the_retry_acts_once(
    settings: Settings, agent: ScriptedAgent, clock: Clock
) -> None:
    class FlakyDueIndex(InMemoryDueIndex):
        fail_next = True

        def add(self, item: DueItem) -> None:
            if self.fail_next:
                self.fail_next = False
                raise ConnectionError("table unreachable")
            super().add(item)

    c = Container.in_memory(
        settings, clock=clock, analyser=agent, due=FlakyDueIndex(), telemetry=RecordingTelemetry()
    )
    tid = new_ticket(c)
    with pytest.raises(ConnectionError):
        c.agent_worker.execute(message(tid))
    assert c.tickets.get(tid).status == "new" and history(c, tid) == []  # type: ignore[union-attr]
    assert c.tickets.get_with_request(tid, "req1")[1] is None  # released: the retry runs
    assert c.agent_worker.execute(message(tid)) == "AUTO_RESOLVE"
    assert c.agent_worker.execute(message(tid)) == "duplicate"
    assert due_items(c) == [("followup", tid, 2, clock.now + DELAY)]
    assert len(history(c, tid)) == 1
    assert c.caps.usage(clock.now) == (1, 1)  # the retry reused the slot it had taken


def test_a_commit_that_loses_its_race_leaves_a_due_item_its_consumer_finds_moot(
    c: Container, clock: Clock
) -> None:
    from shared.domain.models import FollowupMessage, Status, StatusChange

    tid = new_ticket(c)
    real_save = c.tickets.save

    def person_first(*args: Any, **kwargs: Any) -> None:
        c.tickets.save = real_save  # type: ignore[method-assign]
        staff = Principal(sub="sam", roles=frozenset({"staff"}))
        c.ticket_service.change_status(staff, tid, StatusChange(status=Status.OPEN, reason="mine"))
        real_save(*args, **kwargs)

    c.tickets.save = person_first  # type: ignore[method-assign]
    assert c.agent_worker.execute(message(tid)) == "superseded"
    [(kind, _, seq, due)] = due_items(c)
    assert (kind, seq) == ("followup", 2)
    clock.now = due
    followup = FollowupMessage(ticket_id=tid, action_seq=seq, due_at=due)
    assert c.followup_service.run(followup) == "not_resolved"  # the person opened it
    assert due_items(c) == [] and c.notifications.list("alice", 10, None).results == []


def test_the_endpoint_sends_a_snapshot_and_a_human_change_since_supersedes_it(c: Container) -> None:
    from shared.domain.models import Status, StatusChange

    tid = new_ticket(c)
    assert process(tid, bearer("alice")).status_code == 202
    [sent] = queued(c, "agent-actions")
    queued_message = ProcessMessage.model_validate(sent)
    assert queued_message.snapshot() == c.tickets.get(tid) and queued_message.ticket_version == 1
    staff = Principal(sub="sam", roles=frozenset({"staff"}))
    c.ticket_service.change_status(staff, tid, StatusChange(status=Status.OPEN, reason="looked at it"))
    assert c.agent_worker.execute(queued_message) == "superseded"
    [human_entry] = history(c, tid)
    assert human_entry.action_type == "STATUS_CHANGE"


def test_a_check_names_the_actions_version_not_a_later_one(c: Container, agent: ScriptedAgent) -> None:
    from shared.domain.models import Status, StatusChange

    agent.answer = {**agent.answer, "confidence": 0.7}  # type: ignore[dict-item]
    tid = new_ticket(c)
    assert c.agent_worker.execute(message(tid)) == "SCHEDULE_FOLLOWUP"
    staff = Principal(sub="sam", roles=frozenset({"staff"}))
    c.ticket_service.change_status(staff, tid, StatusChange(status=Status.IN_PROGRESS, reason="mine now"))
    assert c.agent_worker.execute(message(tid)) == "duplicate"  # a redelivery schedules nothing more
    [(kind, _, seq, due)] = due_items(c)
    assert (kind, seq) == ("check", 2)
    assert c.check_service.run(tid, seq, due) == "not_needed"
    assert c.tickets.get(tid).status == "in_progress"  # type: ignore[union-attr]
    assert due_items(c) == []  # done: the check removed its item


def test_large_tickets_travel_without_a_snapshot(c: Container) -> None:
    tid = c.ticket_service.create(
        ALICE, TicketCreate(issue_type="Reset password", description="😀" * 10_000)
    ).id
    process(tid, bearer("alice"))
    [sent] = queued(c, "agent-actions")
    assert sent.get("ticket") is None
    assert c.agent_worker.execute(ProcessMessage.model_validate(sent)) != "missing"
