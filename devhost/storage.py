"""Storage for the host: Azurite when the settings ask for development storage
(`shared.storage.clients.is_dev_storage`, the app's own test).

devhost creates no tables or queues, like Core Tools and the Azure host: the app creates what it
needs itself (a trigger queue that does not exist yet is polled as empty; see queues.py).
"""

from __future__ import annotations

from devhost import azurite


def start_azurite() -> azurite.Azurite:
    try:
        emulator = azurite.start(ports=azurite.DEFAULT_PORTS)
    except RuntimeError as exc:
        raise SystemExit(
            f"Cannot start Azurite: {exc}\n"
            "Stop the other process, or run with --no-azurite to use the storage in AzureWebJobsStorage."
        ) from None
    blob, queue, table = emulator.ports
    print(f"Azurite started (blob {blob}, queue {queue}, table {table}; in memory).", flush=True)
    return emulator
