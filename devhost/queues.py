"""Queue triggers with host.json `extensions.queues` semantics: batches, retries, `<queue>-poison`.

What mirrors Azure, and where it was verified:
- A received message whose dequeue count already exceeds maxDequeueCount goes to the poison queue
  without running (QueueProcessor.BeginProcessingMessageAsync); a failed run is released with
  visibilityTimeout, or poisoned once its dequeue count reaches maxDequeueCount
  (CompleteProcessingMessageAsync). Both in Azure/azure-webjobs-sdk,
  src/Microsoft.Azure.WebJobs.Extensions.Storage/Queues/QueueProcessor.cs.
- The poison queue is created when a message must go there (AddMessageAndCreateIfNotExistsAsync,
  same file); a queue already named `*-poison` has no poison queue: its failed messages are left
  invisible, not released (QueueListenerFactory.CreatePoisonQueueReference in Azure/azure-sdk-for-net,
  sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Listeners/QueueListenerFactory.cs).
- A message that is not valid base64 goes to the poison queue as it is, without running and
  whatever its dequeue count (the MessageDecodingFailed handler in
  .../Storage.Queues/src/QueueServiceClientProvider.cs calls HandlePoisonMessageAsync).
- A missing trigger queue is polled as an empty one, with the usual backoff (webjobs-sdk
  Queues/Listeners/QueueListener.cs: queue-not-found and server errors -> CreateBackoffResult).

devhost's own storage calls have short timeouts and few retries, run in their own threads, and are
abandoned on stop, so a storage outage never holds a shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import ExponentialRetry, QueueClient, QueueMessage

from devhost.functions import AppFunction, Invoker
from devhost.settings import QueueOptions

log = logging.getLogger("devhost.queues")

# A received message stays invisible this long while its invocation runs (the real host: 10 min).
# If the host dies mid-way the message is not deleted and reappears after this lease; tests that kill
# a host shorten it with DEVHOST_QUEUE_LEASE_SECONDS.
DEFAULT_LEASE_SECONDS = 600
MIN_POLL_SECONDS = 0.1
POISON_SUFFIX = "-poison"


# Each storage call gives up within ~12 s (5 s per try, one retry after 1 s) instead of the SDK's
# defaults (300 s per try; up to 10 retries, the first after 15 s); polling goes on with backoff.
def client_options() -> dict[str, Any]:
    return {
        "connection_timeout": 5,
        "read_timeout": 5,
        "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=1),
    }


T = TypeVar("T")
# Threads for devhost's own storage calls; never waited for at exit (see __main__).
_storage_threads = ThreadPoolExecutor(8, thread_name_prefix="devhost-storage")


async def storage_call(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_storage_threads, call, *args)


class BadMessage(Exception):
    pass


def poison_name(queue: str) -> str | None:
    return None if queue.endswith(POISON_SUFFIX) else queue + POISON_SUFFIX


class QueueListener:
    """Polls one queue for one function and settles every message it receives."""

    def __init__(self, fn: AppFunction, connection_string: str, options: QueueOptions, invoker: Invoker):
        self.fn, self.options, self.invoker = fn, options, invoker

        def client(name: str) -> QueueClient:
            return QueueClient.from_connection_string(connection_string, name, **client_options())

        self.queue = client(fn.queue_name)
        poison = poison_name(fn.queue_name)
        self.poison = client(poison) if poison else None
        self.lease_seconds = int(os.environ.get("DEVHOST_QUEUE_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        delay, trouble = MIN_POLL_SECONDS, ""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                while len(self._in_flight) > self.options.new_batch_threshold:
                    await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                    self._in_flight = {t for t in self._in_flight if not t.done()}
                receiving = asyncio.ensure_future(storage_call(self._receive, self.options.batch_size))
                await asyncio.wait([receiving, stopped], return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    receiving.cancel()  # a receive stuck on storage is abandoned on stop
                    break
                messages, now = self._received(receiving)
                if now and now != trouble:
                    log.warning("Queue %s: %s", self.fn.queue_name, now)  # once per kind of trouble
                trouble = now
                for message in messages:
                    self._in_flight.add(asyncio.create_task(self._process(message)))
                if messages:
                    delay = MIN_POLL_SECONDS
                    continue
                try:
                    await asyncio.wait_for(asyncio.shield(stopped), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.options.max_polling_interval)
            if self._in_flight:
                await asyncio.wait(self._in_flight)
        finally:
            stopped.cancel()

    def _received(self, receiving: asyncio.Future[list[QueueMessage]]) -> tuple[list[QueueMessage], str]:
        """The messages received, or none and what went wrong: polling goes on either way."""
        try:
            return receiving.result(), ""
        except ResourceNotFoundError:
            return [], "the queue does not exist (yet); polling it as an empty queue"
        except Exception as exc:
            return [], f"cannot receive messages ({type(exc).__name__}); retrying with backoff"

    def _receive(self, count: int) -> list[QueueMessage]:
        pages = self.queue.receive_messages(
            messages_per_page=count, max_messages=count, visibility_timeout=self.lease_seconds
        ).by_page()
        return list(next(pages, []))

    def _decode(self, text: str) -> bytes:
        if self.options.message_encoding != "base64":
            return text.encode("utf-8")
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except binascii.Error:
            raise BadMessage("the message body is not valid base64 (host.json messageEncoding)") from None

    async def _process(self, message: QueueMessage) -> None:
        dequeue_count = message.dequeue_count or 0
        if dequeue_count > self.options.max_dequeue_count:
            reason = f"its dequeue count {dequeue_count} exceeds maxDequeueCount; not run"
            await storage_call(self._settle, message, False, reason)
            return
        try:
            body = self._decode(message.content or "")
        except BadMessage as exc:
            await storage_call(self._settle, message, False, str(exc))
            return
        succeeded = False
        try:
            trigger = FunctionQueueMessage(
                id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            reason = f"New queue message detected on '{self.fn.queue_name}'."
            await self.invoker.call(self.fn, trigger, reason)
            succeeded = True
        except Exception:
            pass  # the invoker logged it (a FunctionTimeout too)
        await storage_call(self._settle, message, succeeded, "")

    def _settle(self, message: QueueMessage, succeeded: bool, poison_reason: str) -> None:
        """Delete on success; poison when told to or out of dequeues; else release for a retry."""
        try:
            if succeeded:
                self.queue.delete_message(message)
            elif self.poison is None:
                pass  # no poison queue for a poison queue: leave it invisible, as Azure does
            elif poison_reason or (message.dequeue_count or 0) >= self.options.max_dequeue_count:
                self._send_to_poison(message.content or "")
                self.queue.delete_message(message)
                log.warning(
                    "Message %s on %s moved to %s: %s",
                    message.id,
                    self.fn.queue_name,
                    self.poison.queue_name,
                    poison_reason or f"it failed {message.dequeue_count} times (maxDequeueCount)",
                )
            else:
                timeout = round(self.options.visibility_timeout)
                self.queue.update_message(message, message.pop_receipt, visibility_timeout=timeout)
        except Exception:
            log.exception("Could not settle message %s on %s", message.id, self.fn.queue_name)

    def _send_to_poison(self, content: str) -> None:
        assert self.poison is not None
        try:
            self.poison.send_message(content)
        except ResourceNotFoundError:
            try:
                self.poison.create_queue()
            except ResourceExistsError:
                pass  # another listener created it first
            self.poison.send_message(content)
