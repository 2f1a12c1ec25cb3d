"""Poison queues for operators: list what failed, and replay it onto its queue."""

from __future__ import annotations

from dataclasses import dataclass

from shared.storage.clients import StorageClients
from shared.storage.names import QUEUES, poison


@dataclass(frozen=True)
class PoisonMessage:
    queue: str
    id: str
    inserted_at: str
    content: str


class PoisonQueues:
    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients

    def peek(self, queue: str | None = None, limit: int = 32) -> list[PoisonMessage]:
        """Up to `limit` (≤32, the service's peek maximum) messages of each poison queue, unchanged."""
        found = []
        for name in [queue] if queue else list(QUEUES):
            for m in self._clients.queue(poison(name)).peek_messages(max_messages=min(limit, 32)):
                found.append(PoisonMessage(name, m.id, str(m.inserted_on), str(m.content)))
        return found

    def replay(self, queue: str | None = None, limit: int = 1000) -> int:
        """Move messages back onto their queue (send first, then delete: a crash duplicates, never loses)."""
        moved = 0
        for name in [queue] if queue else list(QUEUES):
            source, target = self._clients.queue(poison(name)), self._clients.queue(name)
            while moved < limit:
                batch = list(
                    source.receive_messages(max_messages=min(32, limit - moved), visibility_timeout=60)
                )
                if not batch:
                    break
                for message in batch:
                    target.send_message(message.content)
                    source.delete_message(message)
                    moved += 1
        return moved
