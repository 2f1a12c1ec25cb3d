"""Timer triggers on NCRONTAB schedules (six fields, seconds first) or TimeSpan intervals, in UTC.

NCrontab, which the Azure timer trigger uses, ANDs day-of-month and day-of-week: a day must be in
both sets (atifaziz/NCrontab, NCrontab/CrontabSchedule.cs, TryGetNextOccurrence: the day is chosen
from the day-of-month set, then `daysOfWeek.Contains(nextTime.DayOfWeek)` or try the next day).
cron and croniter OR them when both are restricted; `day_or=False` asks croniter for NCrontab's rule.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from azure.functions.decorators.timer import TimerTrigger
from azure.functions.timer import TimerRequest
from croniter import croniter

from devhost.functions import AppFunction, Invoker
from devhost.settings import parse_timespan

log = logging.getLogger("devhost.timers")

PAST_DUE_AFTER = timedelta(seconds=1)


class Schedule:
    def __init__(self, expression: str):
        self.expression = expression
        self.interval: timedelta | None = None
        fields = expression.split()
        if len(fields) == 1 and ":" in expression:
            self.interval = timedelta(seconds=parse_timespan(expression))
        elif len(fields) not in (5, 6) or not croniter.is_valid(expression, second_at_beginning=True):
            raise ValueError(
                f"invalid timer schedule {expression!r} (NCRONTAB: 'sec min hour day month dow')"
            )

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        six = len(self.expression.split()) == 6
        schedule = croniter(self.expression, moment, second_at_beginning=six, day_or=False)
        return schedule.get_next(datetime)  # type: ignore[no-any-return]


def _now() -> datetime:
    return datetime.now(UTC)


class TimerRunner:
    """Fires one timer function; an occurrence missed while the previous run lasted is skipped."""

    def __init__(self, fn: AppFunction, invoker: Invoker):
        assert isinstance(fn.trigger, TimerTrigger)
        self.fn, self.invoker = fn, invoker
        self.schedule = Schedule(fn.schedule)
        self.run_on_startup = bool(fn.trigger.run_on_startup)

    async def run(self, stop: asyncio.Event) -> None:
        last = _now()
        if self.run_on_startup:
            await self._fire(last, last)
        while not stop.is_set():
            # max(): the loop's clock may wake us a hair before the wall-clock due time.
            due = self.schedule.next_after(max(_now(), last))
            try:
                await asyncio.wait_for(stop.wait(), max((due - _now()).total_seconds(), 0))
                return
            except TimeoutError:
                pass
            await self._fire(due, last)
            last = due

    async def _fire(self, due: datetime, last: datetime) -> None:
        now = _now()
        status = {
            "Last": last.isoformat(),
            "Next": self.schedule.next_after(max(now, due)).isoformat(),
            "LastUpdated": now.isoformat(),
        }
        request = TimerRequest(past_due=now - due > PAST_DUE_AFTER, schedule_status=status)
        try:
            await self.invoker.call(self.fn, request, f"Timer fired at {now.isoformat()}")
        except Exception:
            pass  # logged by the invoker; a failing timer never stops the host
