"""Start and stop the project's own Azurite (node_modules, pinned) on loopback, in memory."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shared.storage.clients import dev_connection_string

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
DEFAULT_PORTS = (10000, 10001, 10002)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> tuple[int, ...]:
    """Distinct free ports: every socket stays bound until all are chosen (a port freed at once
    can be handed out again by the next bind)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return tuple(int(s.getsockname()[1]) for s in sockets)
    finally:
        for s in sockets:
            s.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    ports: tuple[int, int, int]

    @property
    def connection_string(self) -> str:
        return dev_connection_string(*self.ports)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Azurite closes a connection idle for 5 s (Node's default); the storage clients' pool reuses
# idle connections, and one reused just as the server closes it fails its request with a reset,
# which the SDK retries for a GET but not for a POST (an insert, a batch): a 503 the product did
# not cause. Azure keeps idle connections for minutes, so the emulator is told to do the same.
KEEP_ALIVE = [f"--{service}KeepAliveTimeout=300" for service in ("blob", "queue", "table")]


def start(ports: tuple[int, int, int] | None = None, timeout: float = 30.0) -> Azurite:
    """Launch the node entry point directly, so the PID we hold is the server itself."""
    if not ENTRY.exists():
        raise RuntimeError(f"Azurite is not installed at {ENTRY}; run `npm ci` first.")
    blob, queue, table = ports or free_ports(3)
    for port in (blob, queue, table):
        if _listening(port):
            raise RuntimeError(f"port {port} is already in use; is another Azurite running?")
    workdir = Path(os.environ.get("AZURITE_WORKDIR", ROOT / ".azurite"))
    workdir.mkdir(exist_ok=True)
    args = [
        "node",
        str(ENTRY),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(blob),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(queue),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(table),
        "--skipApiVersionCheck",
        "--inMemoryPersistence",
        "--disableTelemetry",
        *KEEP_ALIVE,
    ]
    log = open(workdir / f"azurite-{table}.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + timeout
    while not all(_listening(p) for p in (blob, queue, table)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Azurite did not start; see {log.name}")
        time.sleep(0.1)
    return Azurite(process, (blob, queue, table))
