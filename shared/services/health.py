"""Health: `ok` when storage answers; staff also see depths, poison counts and the version."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from shared.domain.models import AgentControls, Principal
from shared.domain.public import AgentHealth, HealthReport, HealthStatus, StorageHealth
from shared.ports import Probe

PUBLIC_CACHE_SECONDS = 5.0  # anyone may call /health/: at most one storage ping per instance per this


class Controls(Protocol):
    """What health reads of ControlsService (another service, so not a port)."""

    def current(self) -> AgentControls: ...


class HealthService:
    def __init__(
        self,
        probe: Probe | None,
        controls: Controls,
        version: str,
        environment: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._controls = controls
        self._version = version
        self._environment = environment
        self._monotonic = monotonic
        self._public: tuple[float, HealthStatus] | None = None
        self._refreshing = threading.Lock()

    def report(self, caller: Principal | None) -> HealthStatus | HealthReport:
        """Anyone: `{status}`, from a report at most PUBLIC_CACHE_SECONDS old, so anonymous
        traffic cannot turn into storage traffic. Staff: the full report, checked live."""
        if caller is None or not caller.is_staff:
            return self._public_report()
        problem = self._probe.ping() if self._probe else None
        depths = self._probe.queue_depths() if self._probe else {}
        poisoned = any(v for k, v in depths.items() if k.endswith("-poison"))
        return HealthReport(
            status="degraded" if problem or poisoned else "ok",
            version=self._version,
            environment=self._environment,
            storage=StorageHealth(ok=problem is None, error=problem),
            queues={k: v for k, v in depths.items() if not k.endswith("-poison")},
            poison={k: v for k, v in depths.items() if k.endswith("-poison")},
            agent=self._agent(),
        )

    def _public_report(self) -> HealthStatus:
        """One thread refreshes an expired report; the others meanwhile get the last one."""
        cached = self._public
        if cached and self._monotonic() - cached[0] < PUBLIC_CACHE_SECONDS:
            return cached[1]
        if not self._refreshing.acquire(blocking=cached is None):
            assert cached is not None
            return cached[1]
        try:
            cached = self._public
            started = self._monotonic()
            if cached and started - cached[0] < PUBLIC_CACHE_SECONDS:
                return cached[1]  # refreshed while we waited
            problem = self._probe.ping() if self._probe else None
            report = HealthStatus(status="degraded" if problem else "ok")
            self._public = (started, report)
            return report
        finally:
            self._refreshing.release()

    def _agent(self) -> AgentHealth:
        controls = self._controls.current()
        return AgentHealth(
            status=controls.status,
            enabled=controls.enabled,
            mode=controls.mode.value,
            rollout_percent=controls.rollout_percent,
            reason=controls.reason,
        )
