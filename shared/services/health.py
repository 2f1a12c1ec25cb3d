"""Health: `ok` when storage answers; staff also see depths, poison counts and the version."""

from __future__ import annotations

from typing import Any, Protocol

from shared.domain.models import AgentControls, Principal


class Probe(Protocol):
    def ping(self) -> str | None: ...

    def queue_depths(self) -> dict[str, int | None]: ...


class Controls(Protocol):
    def current(self) -> AgentControls: ...


class HealthService:
    def __init__(self, probe: Probe | None, controls: Controls, version: str, environment: str) -> None:
        self._probe = probe
        self._controls = controls
        self._version = version
        self._environment = environment

    def report(self, caller: Principal | None) -> dict[str, Any]:
        problem = self._probe.ping() if self._probe else None
        report: dict[str, Any] = {"status": "degraded" if problem else "ok"}
        if caller is None or not caller.is_staff:
            return report
        depths = self._probe.queue_depths() if self._probe else {}
        report.update(
            version=self._version,
            environment=self._environment,
            storage={"ok": problem is None, "error": problem},
            queues={k: v for k, v in depths.items() if not k.endswith("-poison")},
            poison={k: v for k, v in depths.items() if k.endswith("-poison")},
            agent=self._agent(),
        )
        if any(v for k, v in depths.items() if k.endswith("-poison")):
            report["status"] = "degraded"
        return report

    def _agent(self) -> dict[str, Any]:
        controls = self._controls.current()
        return {
            "status": controls.status,
            "enabled": controls.enabled,
            "mode": controls.mode.value,
            "rollout_percent": controls.rollout_percent,
            "reason": controls.reason,
        }
