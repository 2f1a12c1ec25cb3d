"""`python -m manage index rebuild` against a private Azurite: tickets stored without their queue
entries (from before the index, or a lost write) get them; entries of nothing go."""

from __future__ import annotations

import subprocess
import sys

from devhost import azurite
from shared.domain.models import Status
from shared.domain.queues import Queue
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.provision import provision
from tests.helpers import ROOT
from tests.integration.test_ticket_repository_contract import new_ticket, table_repo


def manage(conn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "manage", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AzureWebJobsStorage": conn, "ENVIRONMENT": "local"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rebuild_adds_what_is_missing_removes_what_is_not_and_reports_both() -> None:
    server = azurite.start()
    try:
        conn = server.connection_string
        provision(conn)
        repo = table_repo(conn)
        tickets = [new_ticket(repo, f"user-{i}") for i in range(3)]
        service = StorageClients(conn).table_service
        service.delete_table(names.TICKET_QUEUES)  # as a deployment from before the index
        result = manage(conn, "index", "rebuild")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "index rebuild: 9 entries added, 0 removed" in result.stdout  # status, priority, owner
        listed = repo.list_queue(Queue(status=Status.NEW), 10, None).results
        assert [t.id for t in listed] == [t.id for t in reversed(tickets)]
        again = manage(conn, "index", "rebuild")
        assert "index rebuild: 0 entries added, 0 removed" in again.stdout
    finally:
        server.stop()
