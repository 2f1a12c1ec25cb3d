"""Follow-ups: the queue function that asks an owner whether an auto-resolution held, and the
timer that sweeps the due index (follow-ups and checks whose message was lost, feedback windows)."""

from __future__ import annotations

import os

import azure.functions as func

from functions.queues import parse, queue_worker
from functions.timers import timer_worker
from shared.container import get_container
from shared.domain.models import FollowupMessage
from shared.storage.names import FOLLOWUP_QUEUE

bp = func.Blueprint()


@bp.function_name("followups_send")
@bp.queue_trigger(arg_name="msg", queue_name=FOLLOWUP_QUEUE, connection="AzureWebJobsStorage")
@queue_worker("followups")
def followups_send(msg: func.QueueMessage) -> None:
    """Queue `followups`: "Is everything still working?", in-app and on the webhook, exactly once."""
    get_container().followup_service.run(parse(msg, FollowupMessage))


# Read when the worker indexes the app: on Azure too, the worker imports function_app with the app
# settings in its environment. A deployment that never set it still sweeps, every minute; a
# `%FOLLOWUP_SWEEP_SCHEDULE%` binding expression would instead leave the function in error there.
SWEEP_SCHEDULE = os.environ.get("FOLLOWUP_SWEEP_SCHEDULE") or "0 */1 * * * *"


@bp.function_name("followups_sweep")
@bp.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False)
@timer_worker("followups", "followups-sweep", lambda: SWEEP_SCHEDULE)
def followups_sweep(timer: func.TimerRequest) -> None:
    """Timer (FOLLOWUP_SWEEP_SCHEDULE, NCRONTAB; every minute by default): send what is due and
    whose message was lost, mark unanswered resolutions assumed; bounded work per run."""
    get_container().sweeper.run()
