"""Runs the HTTP server, queue listeners and timers on one event loop until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator, Sequence
from typing import Any, Protocol

import uvicorn

log = logging.getLogger("devhost")

# How long a stop (SIGTERM, Ctrl-C) waits for running invocations to finish and settle their
# messages; after it devhost exits whatever they and storage are doing (a second signal: at once).
# Queue listeners stop polling at once: a receive stuck on unreachable storage is abandoned.
SHUTDOWN_GRACE_SECONDS = 8.0


class Runner(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals are ours (see serve): uvicorn would re-raise them after shutting down


def bind(port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted connections when the
    # listening socket says it is TCP; without it every keep-alive response waits ~40 ms for
    # the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"Cannot listen on 127.0.0.1:{port}: {exc.strerror}. Use --port or PORT.") from None
    return sock


async def serve(sock: socket.socket, asgi_app: Any, runners: Sequence[Runner], ready_message: str) -> int:
    """Serve until a signal (exit code 0) or until a component fails (exit code 1); the exit code."""
    loop = asyncio.get_running_loop()
    stop, force = asyncio.Event(), asyncio.Event()
    config = uvicorn.Config(
        asgi_app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
    )
    server = _Server(config)

    def on_signal(signum: int, _frame: object) -> None:
        loop.call_soon_threadsafe((force if stop.is_set() else stop).set)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        http = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not http.done():
            await asyncio.sleep(0.02)
        if http.done():
            http.result()
            raise SystemExit("The HTTP server stopped during startup.")
        print(ready_message, flush=True)
        background = [asyncio.create_task(r.run(stop)) for r in runners]
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([stopped, http, *background], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in (http, *background) if t.done() and (t.exception() or t is http)]
        for task in failed:
            log.error("A host component stopped unexpectedly", exc_info=task.exception())
        log.info("Stopping: waiting up to %.0fs for running invocations", SHUTDOWN_GRACE_SECONDS)
        stop.set()
        server.should_exit = True
        everything: asyncio.Future[Any] = asyncio.gather(http, *background, return_exceptions=True)
        forced: asyncio.Future[Any] = asyncio.create_task(force.wait())
        done, _ = await asyncio.wait(
            [everything, forced], timeout=SHUTDOWN_GRACE_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        forced.cancel()
        if everything not in done:
            log.warning("Invocations still running; their queue messages reappear after their lease")
        return 1 if failed else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
