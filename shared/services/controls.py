"""Agent controls: kill switch, mode, rollout. Stored, audited, cached briefly per instance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from shared.domain.actions import SYSTEM  # who the audit names for the auto-pause
from shared.domain.models import AgentControls, ControlsUpdate, Principal
from shared.domain.public import AgentControlsPublic
from shared.errors import ConcurrencyConflict, Conflict
from shared.ports import Clock, ControlsRepository

CACHE_SECONDS = 5.0  # a change reaches every instance within this, well inside the 10 s promise
MAX_ATTEMPTS = 10


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
        return self._remember(now, self._repo.get() or self._defaults)

    def show(self) -> AgentControlsPublic:
        """The controls as an admin sees them (the route admits admins only)."""
        return AgentControlsPublic.of(self.current())

    def update(self, caller: Principal, change: ControlsUpdate) -> AgentControlsPublic:
        """Apply an admin's change (the route admits admins only) and audit it, in one commit.

        Only the fields the change names are set, on the controls as they are when it commits:
        a concurrent change that committed first makes the commit fail, and the change is
        applied again to what that one left. Raises Conflict (still contended)."""
        fields = change.model_dump(exclude_none=True, exclude={"reason"})
        committed = self._commit(caller.sub, change.reason, lambda before: fields)
        assert committed is not None
        return AgentControlsPublic.of(committed)

    def pause_by_system(self, reason: str) -> AgentControls | None:
        """Pause the agent as `system` (the auto-pause), audited like an admin's change, in one
        commit; None when it is already paused, whoever paused it: a pause in place, and its
        reason, stand until an admin resumes. Raises Conflict (still contended)."""
        return self._commit(SYSTEM, reason, lambda before: {"enabled": False} if before.enabled else None)

    def _commit(
        self, by: str, reason: str, change: Callable[[AgentControls], dict[str, Any] | None]
    ) -> AgentControls | None:
        """Commit `change(before)` (the fields to set; None: nothing to do) on the stored
        controls, versioned and audited; applied again to what a concurrent change left."""
        for _ in range(MAX_ATTEMPTS):
            before = self._repo.get() or self._defaults
            fields = change(before)
            if fields is None:
                self._remember(self._monotonic(), before)
                return None
            after = before.model_copy(
                update={
                    **fields,
                    "reason": reason,
                    "updated_by": by,
                    "updated_at": self._clock(),
                    "version": before.version + 1,
                }
            )
            audit = {
                "version": after.version,
                "at": after.updated_at,
                "by": by,
                "reason": reason,
                "before": before.model_dump(mode="json"),
                "after": after.model_dump(mode="json"),
            }
            try:
                self._repo.put(after, audit)
            except ConcurrencyConflict:
                continue
            return self._remember(self._monotonic(), after)
        raise Conflict("The agent controls are being changed by someone else; try again.")

    def _remember(self, at: float, controls: AgentControls) -> AgentControls:
        """Cache `controls` unless a newer version is cached (two updates of this instance may
        finish in either order; the cache keeps the later one)."""
        with self._lock:
            if self._cached is None or controls.version >= self._cached[1].version:
                self._cached = (at, controls)
        return controls
