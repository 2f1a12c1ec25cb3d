"""Health: `ok` when storage answers; staff also see depths, poison counts and the version."""

from __future__ import annotations

from typing import Any, Protocol

from shared.domain.models import Principal


class Probe(Protocol):
    def ping(self) -> str | None: ...

    def queue_depths(self) -> dict[str, int | None]: ...


class HealthService:
    def __init__(self, probe: Probe | None, version: str, environment: str) -> None:
        self._probe = probe
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
        )
        if any(v for k, v in depths.items() if k.endswith("-poison")):
            report["status"] = "degraded"
        return report
