"""Agent controls: kill switch, mode, rollout. Stored, audited, cached briefly per instance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.domain.models import AgentControls, ControlsUpdate, Principal
from shared.errors import Forbidden
from shared.services.tickets import Clock
from shared.storage.ports import ControlsRepository

CACHE_SECONDS = 5.0  # a change reaches every instance within this, well inside the 10 s promise


class ControlsService:
    def __init__(
        self,
        repo: ControlsRepository,
        defaults: AgentControls,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo, self._defaults, self._clock, self._monotonic = repo, defaults, clock, monotonic
        self._cached: tuple[float, AgentControls] | None = None
        self._lock = threading.Lock()

    def current(self) -> AgentControls:
        """The stored controls (app settings when none), at most CACHE_SECONDS old."""
        now = self._monotonic()
        with self._lock:
            if self._cached and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
        controls = self._repo.get() or self._defaults
        with self._lock:
            self._cached = (now, controls)
        return controls

    def update(self, caller: Principal, change: ControlsUpdate, by_system: bool = False) -> AgentControls:
        """Apply an admin's change (or the system's auto-pause) and audit it. Raises Forbidden."""
        if not (caller.is_admin or by_system):
            raise Forbidden("Only admins can change the agent controls.")
        before = self._repo.get() or self._defaults
        fields = change.model_dump(exclude_none=True, exclude={"reason"})
        after = before.model_copy(
            update={**fields, "reason": change.reason, "updated_by": caller.sub, "updated_at": self._clock()}
        )
        self._repo.put(
            after,
            {
                "at": after.updated_at,
                "by": caller.sub,
                "reason": change.reason,
                "before": before.model_dump(mode="json"),
                "after": after.model_dump(mode="json"),
            },
        )
        with self._lock:
            self._cached = (self._monotonic(), after)
        return after
