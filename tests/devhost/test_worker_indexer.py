"""devhost reads an app's functions as the real Python worker's indexer does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import ROOT

APPS = [ROOT / "function_app.py", ROOT / "tests" / "devhost" / "sample_app.py"]


def view(side: str, app_file: Path) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "tests.devhost.indexer_view", side, str(app_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("app_file", APPS, ids=lambda p: p.name)
def test_devhost_sees_the_bindings_the_worker_indexer_reports(app_file: Path) -> None:
    worker = view("worker", app_file)
    assert len(worker) >= 10
    assert view("devhost", app_file) == worker


def test_the_comparison_covers_http_and_queue_triggers_of_the_project_app() -> None:
    kinds = {entry["trigger"] for entry in view("worker", ROOT / "function_app.py")}
    assert {"httpTrigger", "queueTrigger"} <= kinds
