"""Queue triggers with host.json `extensions.queues` semantics: batches, retries, `<queue>-poison`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os

from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueClient, QueueMessage

from devhost.functions import AppFunction, Invoker
from devhost.settings import QueueOptions

log = logging.getLogger("devhost.queues")

# A received message stays invisible this long while its invocation runs (the real host: 10 min).
# If the host dies mid-way the message is not deleted and reappears after this lease; tests that kill
# a host shorten it with DEVHOST_QUEUE_LEASE_SECONDS.
DEFAULT_LEASE_SECONDS = 600
MIN_POLL_SECONDS = 0.1


class BadMessage(Exception):
    pass


def poison_name(queue: str) -> str:
    return f"{queue}-poison"


class QueueListener:
    """Polls one queue for one function and settles every message it receives."""

    def __init__(self, fn: AppFunction, connection_string: str, options: QueueOptions, invoker: Invoker):
        self.fn, self.options, self.invoker = fn, options, invoker
        self.queue = QueueClient.from_connection_string(connection_string, fn.queue_name)
        self.poison = QueueClient.from_connection_string(connection_string, poison_name(fn.queue_name))
        self.lease_seconds = int(os.environ.get("DEVHOST_QUEUE_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        delay, failing = MIN_POLL_SECONDS, False
        while not stop.is_set():
            while len(self._in_flight) > self.options.new_batch_threshold:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                self._in_flight = {t for t in self._in_flight if not t.done()}
            try:
                messages = await asyncio.to_thread(self._receive, self.options.batch_size)
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("Cannot receive from queue %s: %s", self.fn.queue_name, exc)
                messages, failing = [], True
            for message in messages:
                self._in_flight.add(asyncio.create_task(self._process(message)))
            if messages:
                delay = MIN_POLL_SECONDS
                continue
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, self.options.max_polling_interval)
        if self._in_flight:
            await asyncio.wait(self._in_flight)

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
        succeeded = False
        try:
            trigger = FunctionQueueMessage(
                id=message.id,
                body=self._decode(message.content or ""),
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            reason = f"New queue message detected on '{self.fn.queue_name}'."
            await self.invoker.call(self.fn, trigger, reason)
            succeeded = True
        except BadMessage as exc:
            log.error("Message %s on %s failed: %s", message.id, self.fn.queue_name, exc)
        except Exception:
            pass  # the invoker logged the traceback
        await asyncio.to_thread(self._settle, message, succeeded)

    def _settle(self, message: QueueMessage, succeeded: bool) -> None:
        try:
            if succeeded:
                self.queue.delete_message(message)
            elif (message.dequeue_count or 0) >= self.options.max_dequeue_count:
                self.poison.send_message(message.content or "")
                self.queue.delete_message(message)
                log.warning(
                    "Message %s failed %d times; moved to %s",
                    message.id,
                    message.dequeue_count,
                    poison_name(self.fn.queue_name),
                )
            else:
                timeout = round(self.options.visibility_timeout)
                self.queue.update_message(message, message.pop_receipt, visibility_timeout=timeout)
        except Exception:
            log.exception("Could not settle message %s on %s", message.id, self.fn.queue_name)


def ensure_queues(connection_string: str, names: set[str]) -> None:
    """Create each trigger queue and its poison queue (idempotent)."""
    for name in sorted(names | {poison_name(n) for n in names}):
        try:
            QueueClient.from_connection_string(connection_string, name).create_queue()
        except ResourceExistsError:
            pass
