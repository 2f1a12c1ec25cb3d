"""Storage for the host: Azurite when the settings ask for development storage, then provisioning."""

from __future__ import annotations

import logging

from devhost import azurite

log = logging.getLogger("devhost")

DEV_STORAGE = "usedevelopmentstorage=true"


def is_dev_storage(connection_string: str) -> bool:
    return connection_string.replace(" ", "").rstrip(";").lower() == DEV_STORAGE


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


def provision_app(connection_string: str) -> None:
    """Every table and queue the app uses (shared.storage.provision), when that module exists."""
    try:
        from shared.storage.provision import provision
    except ModuleNotFoundError as exc:
        if exc.name not in ("shared", "shared.storage", "shared.storage.provision"):
            raise
        log.warning("shared.storage.provision is not importable; skipping the app's storage provisioning")
        return
    provision(connection_string)
