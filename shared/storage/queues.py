"""Azure Storage Queue adapter of the MessageQueue port."""

from __future__ import annotations

from pydantic import BaseModel

from shared.ports import MAX_QUEUE_DELAY_SECONDS as MAX_DELAY_SECONDS
from shared.storage.clients import StorageClients


class AzureMessageQueue:
    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients

    def send(self, queue: str, message: BaseModel, delay_seconds: int = 0) -> None:
        text = message.model_dump_json(exclude_none=True)  # UTF-8, not 6-byte escapes
        self._clients.queue(queue).send_message(
            text, visibility_timeout=min(delay_seconds, MAX_DELAY_SECONDS) or None
        )
