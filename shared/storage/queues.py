"""Azure Storage Queue adapter of the MessageQueue port."""

from __future__ import annotations

import json
from typing import Any

from shared.storage.clients import StorageClients

MAX_DELAY_SECONDS = 7 * 86400 - 1


class AzureMessageQueue:
    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients

    def send(self, queue: str, payload: dict[str, Any], delay_seconds: int = 0) -> None:
        text = json.dumps(payload, default=str, ensure_ascii=False)  # UTF-8, not 6-byte escapes
        self._clients.queue(queue).send_message(
            text, visibility_timeout=min(delay_seconds, MAX_DELAY_SECONDS) or None
        )
