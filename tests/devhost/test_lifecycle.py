"""Starting and stopping the local host: signals, a killed worker, busy ports, its own Azurite."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient

from devhost import azurite
from devhost.azurite import ROOT, Azurite
from devhost.host import SHUTDOWN_GRACE_SECONDS
from devhost.process import HostProcess
from devhost.queues import client_options
from shared.storage.clients import dev_connection_string
from tests.devhost import sample_app
from tests.devhost.conftest import eventually, exists, queue, records

pytestmark = pytest.mark.timeout(120)
APP = "tests.devhost.sample_app:app"


def _env(storage: Azurite, **extra: str) -> dict[str, str]:
    return {"AzureWebJobsStorage": storage.connection_string, **extra}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_host_cleanly(storage: Azurite, signum: int) -> None:
    host = HostProcess(_env(storage), app=APP).start()
    assert httpx.get(f"{host.url}/items").status_code == 200
    assert host.process is not None
    host.process.send_signal(signum)
    assert host.process.wait(20) == 0
    assert "Host stopped." in host.output()
    assert "Traceback" not in host.output()


@pytest.mark.parametrize("outage", [signal.SIGSTOP, signal.SIGKILL])
def test_sigterm_stops_the_host_within_its_grace_period_while_storage_is_down(outage: int) -> None:
    """Azurite frozen (requests hang) or gone (refused); a timer is stuck in a storage call."""
    down = azurite.start()
    for name in (sample_app.QUEUE, sample_app.SLOW_QUEUE):
        queue(down, name).create_queue()
    host = HostProcess(_env(down), app=APP).start()
    try:
        assert host.process is not None
        eventually(lambda: "Executed 'Functions.tick'" in host.output())
        down.process.send_signal(outage)
        time.sleep(2)  # listeners and the every-second timer are now waiting on storage
        stopping = time.monotonic()
        host.process.send_signal(signal.SIGTERM)
        code = host.process.wait(20)
        assert time.monotonic() - stopping <= SHUTDOWN_GRACE_SECONDS + 4  # exit itself is quick (os._exit)
        assert code == 0
        assert "Host stopped." in host.output()
    finally:
        host.kill()
        if down.process.poll() is None:
            down.process.send_signal(signal.SIGCONT)
        down.stop()


def test_devhost_refuses_an_app_azure_would_reject(storage: Azurite) -> None:
    host = HostProcess(_env(storage), app="tests.devhost.bad_app:app")
    with pytest.raises(RuntimeError, match=r"tickets_by_id \('tickets/\{id\}'\) and tickets_list"):
        host.start(timeout=30)


def test_check_passes_on_the_project_function_app() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "names and routes are valid on Azure" in result.stdout


def test_a_killed_worker_leaves_its_message_to_be_retried(storage: Azurite, host_json: Path) -> None:
    client = queue(storage, sample_app.SLOW_QUEUE)
    env = _env(storage, SAMPLE_SLOW_SECONDS="30", DEVHOST_QUEUE_LEASE_SECONDS="3")
    with HostProcess(env, app=APP, host_json=host_json) as first:
        client.send_message("interrupted")
        eventually(lambda: [r for r in records(storage, "slow-started") if r["body"] == "interrupted"])
        first.kill()
    assert client.get_queue_properties().approximate_message_count == 1  # not deleted

    with HostProcess(_env(storage, SAMPLE_SLOW_SECONDS="0"), app=APP, host_json=host_json):
        done = eventually(lambda: [r for r in records(storage, "slow-done") if r["body"] == "interrupted"])
    assert [r["dequeue_count"] for r in done] == [2]
    assert client.get_queue_properties().approximate_message_count == 0


def test_a_busy_port_is_a_clear_error(storage: Azurite) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host = HostProcess(_env(storage), port=taken.getsockname()[1], app=APP)
        with pytest.raises(RuntimeError, match=r"Cannot listen on 127\.0\.0\.1"):
            host.start(timeout=30)


def test_development_storage_starts_and_stops_its_own_azurite() -> None:
    if any(azurite._listening(port) for port in azurite.DEFAULT_PORTS):
        pytest.skip("Azurite's default ports are in use")
    host = HostProcess({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, app=APP, no_azurite=False)
    host.start()
    try:
        assert "Azurite started (blob 10000, queue 10001, table 10002" in host.output()
        assert httpx.get(f"{host.url}/items").status_code == 200
        own = Azurite(None, azurite.DEFAULT_PORTS)  # type: ignore[arg-type]
        assert not exists(own, sample_app.QUEUE)  # devhost creates nothing, like Core Tools
    finally:
        assert host.stop() == 0
    assert not any(azurite._listening(port) for port in azurite.DEFAULT_PORTS)


def test_devhost_storage_calls_give_up_on_a_storage_that_never_answers() -> None:
    """A frozen storage: the socket accepts, nothing answers. The SDK's defaults would wait ~50 min."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        client = QueueClient.from_connection_string(
            dev_connection_string(port, port, port), sample_app.QUEUE, **client_options()
        )
        started = time.monotonic()
        with pytest.raises(AzureError):
            list(client.receive_messages(max_messages=1))
        assert time.monotonic() - started < 20  # two 5 s tries and a short backoff
