"""`POST /tickets/actions/{action_id}/rollback/` through the HTTP adapter, on the in-memory container.

Each test takes an action the way the agent does (a scripted analyser, the real worker), rolls it
back as an admin, and looks at what every reader sees: the ticket, its history, its resolution,
the owner's notices, the rollback log and the follow-up consumers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sentry_sdk

from shared import observability
from shared.config import Settings
from shared.container import Container
from shared.domain.models import (
    ActionType,
    ControlsUpdate,
    Notification,
    Principal,
    Priority,
    ProcessMessage,
    Status,
    StatusChange,
    TicketCreate,
)
from shared.errors import ConcurrencyConflict
from shared.ports import RollbackTally
from shared.services.rollback import RollbackService
from shared.storage.memory import InMemoryNotificationStore, InMemoryRollbackLog
from shared.storage.rates import window_limit
from tests.conftest import SECRET, bearer
from tests.helpers import SentryCapture, installed, serving
from tests.unit.http_client import invoke, payload
from tests.unit.test_agent_pipeline import Clock, ScriptedAgent
from tests.unit.test_sentry import events, raw, start_sentry

ALICE = Principal(sub="alice")
SAM = Principal(sub="sam", roles=frozenset({"staff"}))
ADMIN = bearer("ada", "admin")


class RecordingTelemetry:
    def __init__(self, fail: bool = False) -> None:
        self.rollbacks: list[tuple[Any, ...]] = []
        self.fail = fail

    def action(self, *args: Any) -> None:
        pass

    def rollback(self, *args: Any) -> None:
        self.rollbacks.append(args)
        if self.fail:
            raise RuntimeError("sentry is down")


class Hooks:
    """The after_rollback hook (the auto-pause check), recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[RollbackTally, datetime]] = []

    def __call__(self, tally: RollbackTally, at: datetime) -> None:
        self.calls.append((tally, at))


def build(rate: str = "10/hour", **parts: Any) -> Container:
    settings = Settings(
        AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://", ROLLBACK_THROTTLE_RATE=rate
    )  # type: ignore[call-arg]
    parts.setdefault("telemetry", RecordingTelemetry())
    return Container.in_memory(settings, clock=Clock(), analyser=ScriptedAgent(), **parts)


def with_hook(c: Container, hook: Hooks) -> None:
    c.rollback_service = RollbackService(
        c.tickets,
        c.rollback_log,
        c.notifications,
        c.telemetry,
        c.clock,
        window_limit(c.settings.rollback_throttle_rate),
        after_rollback=hook,
    )


@pytest.fixture
def c() -> Iterator[Container]:
    with installed(build()) as container:
        yield container


def acted(c: Container, answer: dict[str, Any] | None = None, owner: Principal = ALICE) -> str:
    """A new ticket the agent acted on; the action's id."""
    agent = c.analyser
    assert isinstance(agent, ScriptedAgent)
    agent.answer = {**ScriptedAgent().answer, **(answer or {})}  # type: ignore[dict-item]
    ticket = c.ticket_service.create(
        owner, TicketCreate(issue_type="Reset password", description="forgot it")
    )
    c.agent_worker.execute(
        ProcessMessage(ticket_id=ticket.id, request_id=f"r{ticket.id}", requested_by=owner.sub)
    )
    return f"{ticket.id}-2"


def rollback(action_id: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return invoke(
        "tickets_action_rollback",
        "POST",
        json_body=body,
        headers=ADMIN if headers is None else headers,
        route={"action_id": action_id},
    )


def history(c: Container, ticket_id: int) -> list[dict[str, Any]]:
    response = invoke("tickets_history", headers=bearer("alice"), route={"id": str(ticket_id)})
    return payload(response)["action_history"]  # type: ignore[no-any-return]


def notices(c: Container, user: str = "alice") -> list[Notification]:
    return c.notifications.list(user, 100, None).results


def snapshot(c: Container, ticket_id: int) -> Any:
    return c.tickets.get(ticket_id), c.tickets.history(ticket_id, 100, None).results, notices(c)


def test_only_an_admin_may_roll_back(c: Container) -> None:
    action_id = acted(c)
    before = snapshot(c, 1)
    assert rollback(action_id, headers={}).status_code == 401
    for who in (bearer("alice"), bearer("bob"), bearer("sam", "staff")):  # owner, another user, staff
        response = rollback(action_id, headers=who)
        assert response.status_code == 403 and payload(response)["code"] == "forbidden"
    assert snapshot(c, 1) == before
    assert rollback(action_id).status_code == 200


@pytest.mark.parametrize(
    "action_id",
    [
        "abc",
        "1-",
        "-1-2",
        "1--2",
        "01-2",
        "1-02",
        "1-2-3",
        "99999999999999-1",
        "1-9999999999999",
        "0-2",
        "1-0",
        "1 -2",
        "\uff11-2",  # a fullwidth digit: \d would take it
    ],
)
def test_a_malformed_action_id_is_404_like_an_unknown_one(c: Container, action_id: str) -> None:
    acted(c)
    before = snapshot(c, 1)
    response = rollback(action_id)
    assert response.status_code == 404 and payload(response)["code"] == "not_found"
    assert snapshot(c, 1) == before


def test_an_unknown_action_or_ticket_is_404(c: Container) -> None:
    acted(c)
    for action_id in ("1-3", "1-1", "2-2", "999999999999-2"):
        response = rollback(action_id)
        assert response.status_code == 404 and payload(response)["code"] == "not_found", action_id


def test_an_auto_resolution_rolled_back_returns_to_its_previous_status_with_the_resolution_voided(
    c: Container,
) -> None:
    hook = Hooks()
    with_hook(c, hook)
    action_id = acted(c)
    assert c.tickets.get(1).status == "resolved"  # type: ignore[union-attr]

    response = rollback(action_id, {"reason": "Fix was wrong"})

    assert response.status_code == 200
    body = payload(response)
    assert body["ticket_id"] == 1 and body["action_type"] == "AUTO_RESOLVE"
    assert body["rollback_reason"] == "Fix was wrong" and "rolled back" in body["message"]
    assert body["ticket"]["status"] == "new" and "version" not in body["ticket"]
    assert body["ticket"]["resolution"]["outcome"] == "voided" and body["ticket"]["resolution"]["voided_at"]
    assert response.headers["RateLimit-Limit"] == "10" and response.headers["RateLimit-Remaining"] == "9"
    rolled_back, original = history(c, 1)  # newest first
    assert rolled_back["action_type"] == "ROLLBACK" and rolled_back["executed_by"] == "ada"
    assert rolled_back["action_params"]["action_id"] == action_id
    assert original["id"] == action_id and original["rolled_back"] and original["rolled_back_by"] == "ada"
    assert (
        original["rollback_reason"] == "Fix was wrong"
        and original["rolled_back_at"] == rolled_back["executed_at"]
    )
    [notice] = notices(c)
    assert notice.id == f"rollback-{action_id}" and notice.kind == "rollback" and notice.ticket_id == 1
    assert notice.created_at.isoformat().replace("+00:00", "Z") == rolled_back["executed_at"].replace(
        "+00:00", "Z"
    )
    assert c.telemetry.rollbacks == [(1, "AUTO_RESOLVE", "ada")]  # type: ignore[attr-defined]
    [(tally, _)] = hook.calls
    assert tally.recent == 1 and tally.usage.used == 1


def test_the_default_reason_and_an_empty_body(c: Container) -> None:
    action_id = acted(c)
    response = invoke("tickets_action_rollback", "POST", headers=ADMIN, route={"action_id": action_id})
    assert response.status_code == 200 and payload(response)["rollback_reason"] == "Manual rollback by admin"


@pytest.mark.parametrize(
    "body",
    [{"reason": "x" * 1001}, {"force": "yes"}, {"reason": 5}, {"why": "x"}, {"reason": "\ud800"}, [1]],
    ids=["long_reason", "force_string", "reason_number", "unknown_field", "surrogate", "not_object"],
)
def test_a_bad_body_is_400_and_writes_nothing(c: Container, body: Any) -> None:
    action_id = acted(c)
    before = snapshot(c, 1)
    response = rollback(action_id, body)
    assert response.status_code == 400 and payload(response)["code"] == "validation_error"
    assert snapshot(c, 1) == before
    assert rollback(action_id, {"reason": "x" * 1000}).status_code == 200


def test_a_second_rollback_is_409_already_rolled_back(c: Container) -> None:
    action_id = acted(c)
    assert rollback(action_id).status_code == 200
    before = snapshot(c, 1)
    for body in (None, {"force": True}):
        response = rollback(action_id, body)
        assert response.status_code == 409 and payload(response)["code"] == "already_rolled_back"
    assert snapshot(c, 1) == before
    assert c.telemetry.rollbacks == [(1, "AUTO_RESOLVE", "ada")]  # type: ignore[attr-defined]


def test_a_human_change_or_a_deferral_is_not_reversible(c: Container) -> None:
    c.ticket_service.change_status(
        SAM,
        c.ticket_service.create(ALICE, TicketCreate(issue_type="x")).id,
        StatusChange(status=Status.IN_PROGRESS),
    )  # type: ignore[arg-type]
    c.controls.update(
        Principal(sub="ada", roles=frozenset({"admin"})), ControlsUpdate(enabled=False, reason="off")
    )
    deferred = acted(c)
    assert c.tickets.get_entry(2, 2).action_type == ActionType.DEFER_TO_HUMAN  # type: ignore[union-attr]
    for action_id in ("1-2", deferred):
        before = snapshot(c, int(action_id.split("-")[0]))
        response = rollback(action_id, {"force": True})
        assert response.status_code == 409 and payload(response)["code"] == "not_reversible", action_id
        assert snapshot(c, int(action_id.split("-")[0])) == before
    assert c.rollback_log.reserve("probe", "ada", c.clock(), window_limit("10/hour")).usage.used == 1


def test_a_human_change_since_is_409_ticket_changed_and_force_overwrites_it_on_record(c: Container) -> None:
    action_id = acted(
        c, {"recommended_action": "escalate", "analysis": {"severity": "high", "suggested_team": "net"}}
    )
    c.ticket_service.change_status(SAM, 1, StatusChange(status=Status.IN_PROGRESS, priority=Priority.LOW))  # type: ignore[arg-type]
    before = snapshot(c, 1)

    refused = rollback(action_id)
    assert refused.status_code == 409
    problem = payload(refused)
    assert problem["code"] == "ticket_changed" and problem["detail"]
    assert problem["current"] == {"status": "in_progress", "priority": "low"}
    assert problem["expected"] == {"status": "escalated", "priority": "high"}
    assert snapshot(c, 1) == before
    assert (
        c.rollback_log.reserve("probe", "ada", c.clock(), window_limit("10/hour")).usage.used == 1
    )  # released

    forced = rollback(action_id, {"force": True, "reason": "agent got it wrong"})
    assert forced.status_code == 200
    assert payload(forced)["ticket"]["status"] == "new" and payload(forced)["ticket"]["priority"] == "medium"
    entry = history(c, 1)[0]
    assert entry["action_type"] == "ROLLBACK" and entry["action_params"]["force"] is True
    assert entry["action_params"]["overwrote"] == {"status": "in_progress", "priority": "low"}
    assert entry["before_state"]["status"] == "in_progress"


def test_the_throttle_refuses_the_third_rollback_by_one_admin_and_changes_nothing() -> None:
    with installed(build("2/hour")) as c:
        c.clock.now = datetime.now(UTC)  # type: ignore[attr-defined]  # the headers count from the real time
        ids = [acted(c) for _ in range(3)]
        assert [rollback(a).status_code for a in ids[:2]] == [200, 200]
        before = snapshot(c, 3)
        response = rollback(ids[2])
        assert response.status_code == 429 and payload(response)["code"] == "throttled"
        assert response.headers["RateLimit-Limit"] == "2" and response.headers["RateLimit-Remaining"] == "0"
        assert int(response.headers["Retry-After"]) >= 1 and int(response.headers["RateLimit-Reset"]) >= 1
        assert snapshot(c, 3) == before and c.tickets.get(3).status == "resolved"  # type: ignore[union-attr]
        assert (
            rollback(ids[2], headers=bearer("eve", "admin")).status_code == 200
        )  # another admin's own limit


def test_concurrent_rollbacks_of_one_action_commit_once(c: Container) -> None:
    from concurrent.futures import ThreadPoolExecutor

    action_id = acted(c)
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda _: rollback(action_id).status_code, range(20)))
    assert sorted(statuses) == [200] + [409] * 19
    assert [e.action_type for e in c.tickets.history(1, 100, None).results] == ["ROLLBACK", "AUTO_RESOLVE"]
    assert len(notices(c)) == 1 and len(c.telemetry.rollbacks) == 1  # type: ignore[attr-defined]


class ChangeFirst:
    """A ticket repository whose next `save` finds that a person committed a change just before."""

    def __init__(self, c: Container, change: StatusChange) -> None:
        self.inner, self.c, self.change, self.armed = c.tickets, c, change, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save(self, ticket: Any, entries: Any, request: Any = None, updated: Any = (), **hooks: Any) -> None:
        if self.armed:
            self.armed = False
            TicketServiceFor(self.inner, self.c).change_status(SAM, ticket.id, self.change)
        self.inner.save(ticket, entries, request, updated, **hooks)


def TicketServiceFor(tickets: Any, c: Container) -> Any:
    from shared.services.tickets import TicketService

    return TicketService(tickets, c.clock)


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        (StatusChange(status=Status.IN_PROGRESS), "ticket_changed"),  # type: ignore[arg-type]
        (StatusChange(status=Status.RESOLVED, reason="looked at it"), "rolled_back"),  # type: ignore[arg-type]
    ],
    ids=["changes_what_the_action_set", "leaves_it_as_the_action_left_it"],
)
def test_a_rollback_racing_a_human_change_is_applied_whole_or_not_at_all(
    c: Container, change: StatusChange, outcome: str
) -> None:
    action_id = acted(c)
    c.tickets = ChangeFirst(c, change)  # type: ignore[assignment]
    with_hook(c, Hooks())
    response = rollback(action_id)
    ticket = c.tickets.get(1)
    entries = c.tickets.history(1, 100, None).results
    original = c.tickets.get_entry(1, 2)
    assert ticket is not None and original is not None
    if outcome == "ticket_changed":
        assert response.status_code == 409 and payload(response)["code"] == "ticket_changed"
        assert ticket.status == "in_progress" and ticket.resolution.outcome == "pending"  # type: ignore[union-attr]
        assert not original.rolled_back and [e.action_type for e in entries] == [
            "STATUS_CHANGE",
            "AUTO_RESOLVE",
        ]
        assert notices(c) == []
    else:
        assert response.status_code == 200
        assert ticket.status == "new" and ticket.resolution.outcome == "voided"  # type: ignore[union-attr]
        assert original.rolled_back and [e.action_type for e in entries] == [
            "ROLLBACK",
            "STATUS_CHANGE",
            "AUTO_RESOLVE",
        ]
        assert len(notices(c)) == 1


class FailsOnce(InMemoryNotificationStore):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def add(self, notification: Notification) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the process died here")
        super().add(notification)


def test_a_crash_after_the_commit_is_completed_by_the_retry() -> None:
    hook = Hooks()
    with installed(build(notifications=FailsOnce())) as c:
        with_hook(c, hook)
        action_id = acted(c)
        crashed = rollback(action_id, {"reason": "bad fix"})
        assert crashed.status_code == 500  # committed, then died before the notice
        ticket, entries, seen = snapshot(c, 1)
        assert ticket.status == "new" and ticket.resolution.outcome == "voided" and entries[1].rolled_back
        assert seen == [] and hook.calls == []

        retried = rollback(action_id, {"reason": "bad fix"})
        assert retried.status_code == 409 and payload(retried)["code"] == "already_rolled_back"
        [notice] = notices(c)
        assert notice.created_at == entries[0].executed_at == entries[1].rolled_back_at
        [(tally, at)] = hook.calls
        assert tally.recent == 1 and at == entries[1].rolled_back_at  # counted once, at the rollback's time
        assert rollback(action_id).status_code == 409
        assert len(notices(c)) == 1 and snapshot(c, 1)[:2] == (ticket, entries)


def test_a_telemetry_failure_does_not_change_the_answer() -> None:
    with installed(build(telemetry=RecordingTelemetry(fail=True))) as c:
        assert rollback(acted(c)).status_code == 200
        assert c.telemetry.rollbacks  # type: ignore[attr-defined]


def test_a_rolled_back_ticket_is_processed_again_only_when_staff_force_it(c: Container) -> None:
    action_id = acted(c)
    assert rollback(action_id).status_code == 200

    def process(who: dict[str, str], body: Any = None) -> Any:
        return invoke("agent_process", "POST", json_body=body, headers=who, route={"id": "1"})

    assert payload(process(bearer("alice")))["status"] == "skipped"
    accepted = process(bearer("sam", "staff"), {"force": True})
    assert accepted.status_code == 202
    [*_, (_, sent, _)] = [m for m in c.queue.sent if m[0] == "agent-actions"]  # type: ignore[attr-defined]
    assert c.agent_worker.execute(ProcessMessage.model_validate(sent)) == "AUTO_RESOLVE"
    ticket = c.tickets.get(1)
    assert ticket.status == "resolved" and ticket.resolution.outcome == "pending"  # type: ignore[union-attr]
    assert rollback("1-4").status_code == 200  # the new action is an action of its own


def test_a_rolled_back_scheduled_follow_up_is_not_escalated_by_its_check(c: Container) -> None:
    action_id = acted(c, {"confidence": 0.7})
    assert c.tickets.get(1).status == "in_progress"  # type: ignore[union-attr]
    assert rollback(action_id).status_code == 200
    assert c.check_service.run(1, 2) == "not_needed"
    assert c.tickets.get(1).status == "new"  # type: ignore[union-attr]


def test_the_follow_up_checks_escalation_can_be_rolled_back(c: Container) -> None:
    acted(c, {"confidence": 0.7})
    c.clock.now += timedelta(days=1)  # type: ignore[attr-defined]
    assert c.check_service.run(1, 2) == "escalated"
    assert c.tickets.get_entry(1, 3).executed_by == "system"  # type: ignore[union-attr]
    response = rollback("1-3")
    assert response.status_code == 200 and payload(response)["ticket"]["status"] == "in_progress"
    assert rollback("1-2").status_code == 200  # and then the scheduled follow-up itself
    assert c.tickets.get(1).status == "new"  # type: ignore[union-attr]


def test_a_save_that_keeps_losing_gives_up_with_409_and_releases_its_reservation(c: Container) -> None:
    action_id = acted(c)

    class AlwaysLoses:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def save(self, *args: Any, **kwargs: Any) -> None:
            raise ConcurrencyConflict("someone else")

    inner = c.tickets
    c.tickets = AlwaysLoses()  # type: ignore[assignment]
    with_hook(c, Hooks())
    response = rollback(action_id)
    assert response.status_code == 409 and payload(response)["code"] == "concurrent_update"
    assert isinstance(c.rollback_log, InMemoryRollbackLog)
    assert c.rollback_log.reserve("probe", "ada", c.clock(), window_limit("10/hour")).usage.used == 1


def test_a_retry_past_the_hour_sends_the_notice_but_counts_nothing_towards_a_pause() -> None:
    hook = Hooks()
    with installed(build(notifications=FailsOnce())) as c:
        with_hook(c, hook)
        action_id = acted(c)
        assert rollback(action_id).status_code == 500
        c.clock.now += timedelta(hours=2)  # type: ignore[attr-defined]
        assert payload(rollback(action_id))["code"] == "already_rolled_back"
        assert len(notices(c)) == 1 and hook.calls == []


@pytest.fixture
def capture() -> Iterator[SentryCapture]:
    """A local Sentry that receives what the app sends; Sentry is off again afterwards."""
    with serving(SentryCapture()) as server:
        try:
            yield server
        finally:
            sentry_sdk.init()  # no DSN: the client is off for the tests that follow
            observability._sentry_on = False


def test_each_rollback_is_a_sentry_warning_tagged_with_the_admin_as_user(capture: SentryCapture) -> None:
    settings = start_sentry(capture.dsn, ROLLBACK_THROTTLE_RATE="10/hour", RATELIMIT_STORAGE_URI="memory://")
    with installed(Container.in_memory(settings, clock=Clock(), analyser=ScriptedAgent())) as c:
        action_id = acted(c)
        assert rollback(action_id, {"reason": "wrong fix, call jane.doe@contoso.example"}).status_code == 200
        assert rollback(action_id).status_code == 409  # a refusal is no rollback event
    [event] = [e for e in events(capture) if e.get("tags", {}).get("event") == "rollback"]
    assert event["level"] == "warning" and event["user"] == {"id": "ada"}
    assert event["tags"]["action_type"] == "AUTO_RESOLVE" and event["tags"]["component"] == "autonomous_agent"
    assert "jane.doe" not in raw(capture)  # the admin's reason is free text: never sent
