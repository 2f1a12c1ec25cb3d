"""What more than one test module needs: local HTTP servers (a Sentry capture among them),
concurrent races, the `manage check` command, and a container installed for the functions."""

from __future__ import annotations

import gzip
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

from shared.container import Container, use_container
from shared.errors import ConcurrencyConflict

ROOT = Path(__file__).resolve().parents[1]
S = TypeVar("S", bound=ThreadingHTTPServer)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output free of access logs."""

    def log_message(self, *_: object) -> None:
        pass


def local_server(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on a free port of 127.0.0.1 (not yet serving: see `serving`)."""
    return ThreadingHTTPServer(("127.0.0.1", 0), handler)


def url_of(server: ThreadingHTTPServer, path: str = "") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@contextmanager
def serving(server: S) -> Iterator[S]:
    """`server` answering on a daemon thread until the block ends."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class SentryCapture(ThreadingHTTPServer):
    """A stand-in for Sentry's ingest: keeps every envelope the SDK sends, unzipped."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SentryHandler)
        self.envelopes: list[bytes] = []

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server_address[1]}/1"


class _SentryHandler(QuietHandler):
    server: SentryCapture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.envelopes.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def race(attempt: Callable[[int], object], n: int = 8) -> list[bool]:
    """Run attempt(0) .. attempt(n - 1) at once; which of them committed (the others raised
    ConcurrencyConflict)."""

    def committed(i: int) -> bool:
        try:
            attempt(i)
            return True
        except ConcurrencyConflict:
            return False

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(committed, range(n)))


def manage_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m manage check` with the settings `env` and nothing else."""
    return subprocess.run(
        [sys.executable, "-m", "manage", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def installed(container: Container) -> Iterator[Container]:
    """`container` is what the functions use until the block ends."""
    use_container(container)
    try:
        yield container
    finally:
        use_container(None)
