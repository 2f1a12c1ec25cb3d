"""Starting and stopping the local host: signals, a killed worker, busy ports, its own Azurite."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from devhost import azurite
from devhost.azurite import Azurite
from devhost.process import HostProcess
from tests.devhost import sample_app
from tests.devhost.conftest import eventually, queue, records

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
        queue_client = queue(Azurite(None, azurite.DEFAULT_PORTS), sample_app.QUEUE)  # type: ignore[arg-type]
        assert queue_client.get_queue_properties() is not None  # trigger queues provisioned
    finally:
        assert host.stop() == 0
    assert not any(azurite._listening(port) for port in azurite.DEFAULT_PORTS)
