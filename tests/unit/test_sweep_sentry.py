"""The sweeper's timer and Sentry: cron check-ins around every run, and Sentry never in the way."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sentry_sdk
from azure.functions.timer import TimerRequest

from functions.timers import monitor_config
from shared import observability
from shared.container import Container, use_container
from shared.storage.memory import InMemoryDueIndex
from tests.helpers import SentryCapture, serving
from tests.unit.http_client import REGISTERED
from tests.unit.test_sentry import sentry_items, start_sentry


class Context:
    invocation_id = "sweep-invocation"


@pytest.fixture(autouse=True)
def sentry_off_afterwards(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    gate = observability.FlushGate(observability.FLUSH_TIMEOUT_SECONDS, observability.FLUSH_PAUSE_SECONDS)
    monkeypatch.setattr(observability, "_flush_gate", gate)
    yield
    use_container(None)
    sentry_sdk.init()
    observability._sentry_on = False


def sweep_function() -> Any:
    [function] = [f.get_user_function() for f in REGISTERED if f.get_function_name() == "followups_sweep"]
    return function


def checkins(server: SentryCapture) -> list[dict[str, Any]]:
    return [item for item in sentry_items(server) if "check_in_id" in item]


def test_a_run_checks_in_progress_then_ok_with_its_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(SentryCapture()) as server:
        settings = start_sentry(server.dsn)
        use_container(Container.in_memory(settings))
        sweep_function()(TimerRequest(past_due=False), Context())
        found = checkins(server)
    assert [c["status"] for c in found] == ["in_progress", "ok"]
    assert {c["monitor_slug"] for c in found} == {"followups-sweep"}
    assert found[0]["check_in_id"] == found[1]["check_in_id"] and found[1]["duration"] >= 0
    assert found[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "*/1 * * * *"}


def test_a_failing_run_checks_in_error_and_raises() -> None:
    class BrokenIndex(InMemoryDueIndex):
        def cursor(self) -> datetime | None:
            raise ConnectionError("table unreachable")

    with serving(SentryCapture()) as server:
        settings = start_sentry(server.dsn)
        use_container(Container.in_memory(settings, due=BrokenIndex()))
        with pytest.raises(ConnectionError):
            sweep_function()(TimerRequest(past_due=False), Context())
        found = checkins(server)
        events = [i for i in sentry_items(server) if i.get("level") == "error"]
    assert [c["status"] for c in found] == ["in_progress", "error"]
    assert events and events[0]["tags"]["component"] == "followups"
    assert events[0]["tags"]["outcome"] == "failed"


def test_sentry_down_never_fails_or_holds_a_run() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = start_sentry(f"http://public@127.0.0.1:{port}/1")
    container = Container.in_memory(settings)
    use_container(container)
    started = time.monotonic()
    for _ in range(3):
        sweep_function()(TimerRequest(past_due=False), Context())
    assert time.monotonic() - started < 5
    assert isinstance(container.due, InMemoryDueIndex) and container.due.cursor() is not None


@pytest.mark.parametrize(
    ("schedule", "crontab"),
    [
        ("0 */1 * * * *", "*/1 * * * *"),
        ("0 0 3 * * *", "0 3 * * *"),
        ("*/10 * * * * *", None),
        ("00:05:00", None),
    ],
)
def test_the_monitor_is_described_when_sentrys_crontab_can_say_it(schedule: str, crontab: str | None) -> None:
    config = monitor_config(schedule)
    assert (config["schedule"]["value"] if config else None) == crontab
    assert config is None or config["timezone"] == "UTC"
