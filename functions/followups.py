"""Follow-ups: the queue function that asks an owner whether an auto-resolution held."""

from __future__ import annotations

import azure.functions as func

from functions.queues import parse, queue_worker
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
