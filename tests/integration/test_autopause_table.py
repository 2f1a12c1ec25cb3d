"""Auto-pause over the Table adapters on Azurite: instances racing past the threshold pause once."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from shared.domain.models import AgentControls
from shared.ports import WindowLimit
from shared.services.autopause import AutoPause
from shared.services.controls import ControlsService
from shared.storage.clients import StorageClients
from shared.storage.tables.controls import TableControlsRepository
from shared.storage.tables.rollbacks import TableRollbackLog

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
DEFAULTS = AgentControls(enabled=True, mode="autonomous", rollout_percent=100)


def test_concurrent_rollbacks_on_two_instances_pause_once(azurite_conn: str) -> None:
    table = StorageClients(azurite_conn).table(f"ctl{uuid.uuid4().hex[:12]}")
    table.create_table()
    instances = []
    for _ in range(2):  # each with its own cached log row and controls
        repo, log = TableControlsRepository(table), TableRollbackLog(table)
        instances.append((AutoPause(ControlsService(repo, DEFAULTS, lambda: NOW), log, 3), log))
    start = threading.Barrier(12)

    def rollback(i: int) -> bool:
        auto_pause, log = instances[i % 2]
        start.wait()
        tally = log.reserve(f"{i}-2", f"admin{i}", NOW, WindowLimit(10, 3600))
        return auto_pause.after_rollback(tally, NOW)

    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(rollback, range(12))).count(True) == 1
    repo = TableControlsRepository(table)
    controls = repo.get()
    assert controls is not None and not controls.enabled and controls.updated_by == "system"
    [audit] = repo.audit_trail(10)
    assert audit["by"] == "system" and audit["version"] == 1
    assert audit["reason"].endswith("rollbacks in the last hour (more than AUTO_PAUSE_ROLLBACKS_PER_HOUR=3)")
