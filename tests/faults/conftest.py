"""Fault tests: each gets a fresh Azurite (on disk where it must survive a restart) and starts
its own hosts; the fixtures stop all of them, by the PIDs they started, whatever the test did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import azurite
from tests.e2e.conftest import E2E_HOST_JSON, Stack
from tests.faults.support import DiskStack


def _host_json(tmp_path: Path) -> Path:
    path = tmp_path / "host.json"
    path.write_text(json.dumps(E2E_HOST_JSON))
    return path


def _stop(stack: Stack) -> None:
    for process in stack.hosts:
        process.stop(timeout=10)
    stack.stop_storage()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(azurite.start(), _host_json(tmp_path))
    try:
        yield s
    finally:
        _stop(s)


@pytest.fixture
def disk_stack(tmp_path: Path) -> Iterator[DiskStack]:
    location = tmp_path / "azurite"
    location.mkdir()
    s = DiskStack(location, _host_json(tmp_path))
    try:
        yield s
    finally:
        _stop(s)
