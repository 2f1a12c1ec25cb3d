"""Local Azure Functions host: `python -m devhost` serves function_app.py without Core Tools.

It loads local.settings.json (copied from local.settings.sample.json when missing; the environment
wins), starts Azurite when AzureWebJobsStorage is `UseDevelopmentStorage=true`, prints dev tokens,
and runs the app's functions as host.json configures them, the way the Azure host does:

- HTTP triggers on http://127.0.0.1:7071/api/<route> (PORT or --port to change), tried in
  function-name order; a wrong method is 404;
- queue triggers with `extensions.queues` (batchSize, newBatchThreshold, maxDequeueCount then
  `<queue>-poison`, visibilityTimeout, maxPollingInterval, messageEncoding);
- timer triggers on their NCRONTAB schedules (runOnStartup honoured);
- `functionTimeout` for every invocation.

It creates no tables or queues. It refuses to start when a function name or route would be
rejected by Azure, or when two HTTP routes can match one request (`--check` only checks).
Ctrl-C or SIGTERM stops everything it started within SHUTDOWN_GRACE_SECONDS. Where Azure Functions
Core Tools is installed, `func start` serves the same tree.

    python -m devhost [--port N] [--app module:attr] [--host-json PATH] [--no-azurite] [--check]
                      [--cors ORIGINS] [--cors-credentials]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devhost import settings
from devhost.azurite import Azurite
from devhost.functions import AppFunction, Invoker, describe, discover, load_app
from devhost.host import Runner, bind, serve
from devhost.http import Router, build_app
from devhost.queues import QueueListener
from devhost.settings import QueueOptions
from devhost.storage import start_azurite
from devhost.timers import Schedule, TimerRunner
from devhost.tokens import print_tokens
from shared.local_settings import load_local_settings
from shared.storage.clients import is_dev_storage

log = logging.getLogger("devhost")
LOG_FORMAT = "[%(asctime)s] %(levelname)s %(message)s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, help="HTTP port (default: PORT, then 7071)")
    parser.add_argument("--app", default="function_app:app", help="the FunctionApp, as module:attr")
    parser.add_argument(
        "--host-json",
        default=os.environ.get("DEVHOST_HOST_JSON", "host.json"),
        help="host.json to honour (default: DEVHOST_HOST_JSON, then ./host.json)",
    )
    parser.add_argument("--no-azurite", action="store_true", help="use AzureWebJobsStorage as given")
    parser.add_argument(  # as `func start --cors`; the default is Host.CORS of local.settings.json
        "--cors", help="comma-separated CORS origins with no spaces (default: Host.CORS)"
    )
    parser.add_argument(
        "--cors-credentials",
        action="store_true",
        default=None,
        help="allow credentialed cross-origin requests (default: Host.CORSCredentials)",
    )
    parser.add_argument(
        "--check", action="store_true", help="check function names and routes as Azure would, then exit"
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM during startup: unwind, so Azurite is stopped too


def _port(args: argparse.Namespace, host_section: dict[str, Any]) -> int:
    if args.port is not None:
        return int(args.port)
    return int(os.environ.get("PORT") or host_section.get("LocalHttpPort") or 7071)


def _thread_pool() -> ThreadPoolExecutor:
    """Sized like the Python worker's: PYTHON_THREADPOOL_THREAD_COUNT, else min(32, CPUs + 4)."""
    size = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    return ThreadPoolExecutor(int(size) if size else None, thread_name_prefix="invocation")


def _queue_listeners(
    functions: list[AppFunction], options: QueueOptions, invoker: Invoker, emulator: Azurite | None
) -> list[Runner]:
    """One listener per queue trigger. Nothing is created: a missing queue is polled as empty."""

    def connection(fn: AppFunction) -> str:
        value = os.environ.get(fn.connection_setting, "")
        if not value:
            raise SystemExit(f"{fn.name}: app setting {fn.connection_setting} is not set")
        return emulator.connection_string if emulator and is_dev_storage(value) else value

    return [
        QueueListener(fn, connection(fn), options, invoker) for fn in functions if fn.kind == "queueTrigger"
    ]


def _load(spec: str, route_prefix: str) -> list[AppFunction]:
    """The app's functions, refused (SystemExit naming the culprits) where Azure would refuse them.

    A trigger whose %SETTING% binding expression does not resolve (a timer's schedule, a queue's
    name) puts that function in error and the host runs the others, as the Azure host does
    (its name resolver fails indexing that function: "'%X%' does not resolve to a value")."""
    try:
        functions = discover(load_app(spec))
        Router([f for f in functions if f.kind == "httpTrigger"], route_prefix)  # checks every route
        usable = []
        for fn in functions:
            try:
                if fn.kind == "timerTrigger":
                    Schedule(fn.schedule)
                elif fn.kind == "queueTrigger":
                    fn.queue_name  # noqa: B018 - resolves its binding expression
            except KeyError as exc:
                log.error("The function %s is in error and does not run: %s", fn.name, exc.args[0])
                print(f"Function {fn.name} is in error: {exc.args[0]}", flush=True)
                continue
            usable.append(fn)
    except ValueError as exc:
        raise SystemExit(f"devhost refuses to start {spec}: {exc}") from None
    return usable


def _exit(code: int) -> int:
    """Exit without waiting for threads stuck in user code or storage calls (abandoned on stop)."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)

    host_section = load_local_settings(Path.cwd(), create_from_sample=True)  # before the app is imported
    config = settings.load_host_json(Path(args.host_json))
    port = _port(args, host_section)
    base_url = f"http://127.0.0.1:{port}" + (f"/{config.route_prefix}" if config.route_prefix else "")
    functions = _load(args.app, config.route_prefix)
    if args.check:
        print(describe(functions, base_url), flush=True)
        print(f"{args.app}: {len(functions)} functions; names and routes are valid on Azure.")
        return 0

    sock = bind(port)
    pool = _thread_pool()
    invoker = Invoker(pool, config.function_timeout)
    if args.cors is not None:
        host_section = {**host_section, "CORS": args.cors}
    if args.cors_credentials is not None:
        host_section = {**host_section, "CORSCredentials": args.cors_credentials}
    try:
        http_app = build_app(functions, config.route_prefix, invoker, host_section)
    except ValueError as exc:
        raise SystemExit(f"devhost refuses to start: {exc}") from None
    timers: list[Runner] = [TimerRunner(f, invoker) for f in functions if f.kind == "timerTrigger"]

    emulator: Azurite | None = None
    try:
        if not args.no_azurite and is_dev_storage(os.environ.get(settings.STORAGE_SETTING, "")):
            emulator = start_azurite()
            os.environ[settings.STORAGE_SETTING] = emulator.connection_string
        listeners = _queue_listeners(functions, config.queues, invoker, emulator)
        print(describe(functions, base_url), flush=True)
        http = [f for f in functions if f.kind == "httpTrigger"]
        print_tokens(base_url, console=any(f.route == "console" for f in http))
        ready = f"Host started: {base_url}/ (Ctrl-C to stop)"
        exit_code = asyncio.run(serve(sock, http_app, listeners + timers, ready))
    except KeyboardInterrupt:
        return _exit(0)
    finally:
        if emulator:
            emulator.stop()
        pool.shutdown(wait=False, cancel_futures=True)
    print("Host stopped.", flush=True)
    return _exit(exit_code)


if __name__ == "__main__":
    sys.exit(main())
