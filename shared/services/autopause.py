"""Auto-pause: too many rollbacks in the trailing hour pause the agent until an admin resumes it."""

from __future__ import annotations

from datetime import datetime

from shared.ports import RollbackLog, RollbackTally
from shared.services.controls import ControlsService


class AutoPause:
    """More than `threshold` rollbacks in the trailing hour (AUTO_PAUSE_ROLLBACKS_PER_HOUR; 0 turns
    it off) pause the agent through its controls, as `system`, audited like an admin's change.

    The count is the rollback log's (exact across instances: every rollback has its own `recent`),
    so the rollback that passes the threshold pauses. Two instances passing it at once both try;
    the controls commit is versioned, so one commits and the other finds the agent paused. A pause
    already in place (an admin's, or an earlier auto-pause) is left as it is, reason included.
    Either way the log's count restarts at this rollback: the agent is paused now, and what
    counts towards the next auto-pause is what happens after. The pause is committed before the
    count restarts, so a crash in between errs on the side of pausing again, never of not pausing.
    """

    def __init__(self, controls: ControlsService, log: RollbackLog, threshold: int) -> None:
        self._controls, self._log, self._threshold = controls, log, threshold

    def after_rollback(self, tally: RollbackTally, at: datetime) -> bool:
        """Pause when `tally` (the log's count for the rollback at `at`) passes the threshold;
        True when this call paused the agent. Calling it again for the same tally does nothing."""
        if self._threshold <= 0 or tally.recent <= self._threshold:
            return False
        reason = (
            f"{tally.recent} rollbacks in the last hour "
            f"(more than AUTO_PAUSE_ROLLBACKS_PER_HOUR={self._threshold})"
        )
        paused = self._controls.pause_by_system(reason) is not None
        self._log.paused(at)
        return paused
