"""The timer adapter layer: invocation scope, Sentry cron check-ins, one error report."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import azure.functions as func
import sentry_sdk
from sentry_sdk.crons import capture_checkin
from sentry_sdk.crons.consts import MonitorStatus

from shared import observability

log = logging.getLogger("resolvemeq.timer")

TimerHandler = Callable[[func.TimerRequest], object]


def monitor_config(schedule: str) -> dict[str, Any] | None:
    """Sentry's monitor for an NCRONTAB schedule (seconds first), so the monitor is created and kept
    in step by the check-ins; None when Sentry's five-field crontab cannot say it (a schedule
    that fires at other seconds than 0): the check-ins then go to a monitor made by hand."""
    fields = schedule.split()
    if len(fields) != 6 or fields[0] != "0":
        return None
    return {
        "schedule": {"type": "crontab", "value": " ".join(fields[1:])},
        "checkin_margin": 2,  # minutes late before a missed check-in is reported
        "max_runtime": 10,  # minutes in progress before it is reported as timed out
        "timezone": "UTC",
    }


def _checkin(slug: str, status: str, **extra: Any) -> str | None:
    """A check-in is queued on Sentry's transport and flushed with the invocation, bounded; it
    never raises into the run (Sentry down, or not configured: nothing happens)."""
    try:
        return capture_checkin(monitor_slug=slug, status=status, **extra)
    except Exception:
        log.debug("Sentry check-in %s for %s failed", status, slug, exc_info=True)
        return None


def timer_worker(
    component: str, monitor_slug: str, schedule: Callable[[], str]
) -> Callable[[TimerHandler], Callable[[func.TimerRequest, func.Context], None]]:
    """Wrap a timer handler: an in-progress check-in, then ok or error with the duration (SPEC §10:
    timer functions send cron check-ins). A failure is logged and sent as an error event tagged
    with `component` and `outcome:failed`, then raised (the host logs it; the next occurrence runs
    as scheduled). `schedule` gives the NCRONTAB the monitor is described with."""

    def wrap(handler: TimerHandler) -> Callable[[func.TimerRequest, func.Context], None]:
        def run(timer: func.TimerRequest, context: func.Context) -> None:
            invocation = getattr(context, "invocation_id", None) or str(uuid.uuid4())
            with observability.invocation(invocation, handler.__name__):
                sentry_sdk.get_isolation_scope().set_tag("component", component)
                config = None
                try:
                    config = monitor_config(schedule())
                except Exception:  # settings refused: the handler reports that itself
                    log.debug("no monitor config for %s", monitor_slug, exc_info=True)
                extra: dict[str, Any] = {"monitor_config": config} if config else {}
                check_in = _checkin(monitor_slug, MonitorStatus.IN_PROGRESS, **extra)
                started = time.monotonic()
                if timer.past_due:
                    log.info("%s: the timer is past due", handler.__name__)
                try:
                    handler(timer)
                except Exception:
                    sentry_sdk.get_isolation_scope().set_tag("outcome", "failed")
                    log.exception("timer %s failed", handler.__name__)
                    sentry_sdk.capture_exception()
                    _checkin(monitor_slug, MonitorStatus.ERROR, check_in_id=check_in,
                             duration=time.monotonic() - started, **extra)  # fmt: skip
                    raise
                _checkin(monitor_slug, MonitorStatus.OK, check_in_id=check_in,
                         duration=time.monotonic() - started, **extra)  # fmt: skip

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap
