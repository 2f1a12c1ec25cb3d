"""The queue adapter layer: invocation scope, one error report, re-raise so the host retries."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

import azure.functions as func
import sentry_sdk
from pydantic import BaseModel, ValidationError

from shared import observability
from shared.errors import RequestInProgress

log = logging.getLogger("resolvemeq.queue")

QueueHandler = Callable[[func.QueueMessage], object]
M = TypeVar("M", bound=BaseModel)


def parse(msg: func.QueueMessage, model: type[M]) -> M:
    """The message as `model`; a malformed one raises without echoing its body (it carries tickets)."""
    try:
        return model.model_validate_json(msg.get_body())
    except ValidationError as exc:
        raise ValueError(f"malformed message {msg.id}: {exc.error_count()} errors") from None


def queue_worker(
    component: str,
) -> Callable[[QueueHandler], Callable[[func.QueueMessage, func.Context], None]]:
    """Wrap a queue handler. A failure is logged and sent to Sentry as an error event tagged
    with `component` and `outcome:failed` (the message id and dequeue count, never its body:
    it carries the ticket); then it is raised, so the host retries it and, after
    maxDequeueCount, poisons it."""

    def wrap(handler: QueueHandler) -> Callable[[func.QueueMessage, func.Context], None]:
        def run(msg: func.QueueMessage, context: func.Context) -> None:
            invocation = getattr(context, "invocation_id", None) or str(uuid.uuid4())
            with observability.invocation(invocation, handler.__name__, payload=msg.get_body()):
                sentry_sdk.get_isolation_scope().set_tag("component", component)
                try:
                    handler(msg)
                except RequestInProgress as busy:
                    log.info("message %s: %s; it will be retried", msg.id, busy)
                    raise
                except Exception:
                    sentry_sdk.get_isolation_scope().set_tag("outcome", "failed")
                    log.exception("message %s failed (dequeue count %s)", msg.id, msg.dequeue_count)
                    sentry_sdk.capture_exception()  # deduplicated if the logging integration sent it
                    raise

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap
