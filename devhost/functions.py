"""The app's registered functions, and invoking one the way the Python worker does."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.core import Trigger
from azure.functions.decorators.http import HttpTrigger
from azure.functions.decorators.queue import QueueTrigger
from azure.functions.decorators.timer import TimerTrigger

from devhost.settings import STORAGE_SETTING, resolve

log = logging.getLogger("devhost")

ALL_METHODS = ("GET", "POST", "DELETE", "HEAD", "PATCH", "PUT", "OPTIONS")
# Bindings the local host passes or renders itself; any other binding is not supported here.
_HANDLED = {"httpTrigger", "http", "queueTrigger", "timerTrigger"}
_FUNCTION_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_\-]{0,127}")


@dataclass(frozen=True)
class AppFunction:
    name: str
    callable: Callable[..., Any]
    trigger: Trigger
    directory: str

    @property
    def kind(self) -> str:
        return str(self.trigger.get_binding_name())

    @functools.cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.callable)

    @functools.cached_property
    def wants_context(self) -> bool:
        return "context" in inspect.signature(self.callable).parameters

    # HTTP
    @property
    def route(self) -> str:
        assert isinstance(self.trigger, HttpTrigger)
        return (self.trigger.route or self.name).strip("/")  # Azure: an empty route is the name

    @property
    def methods(self) -> tuple[str, ...]:
        assert isinstance(self.trigger, HttpTrigger)
        if not self.trigger.methods:
            return ALL_METHODS
        return tuple(str(m.value if isinstance(m, Enum) else m).upper() for m in self.trigger.methods)

    def allows(self, method: str) -> bool:
        """No methods listed means every method (Azure adds no HttpMethodRouteConstraint then)."""
        assert isinstance(self.trigger, HttpTrigger)
        return not self.trigger.methods or method.upper() in self.methods

    # Queue
    @property
    def queue_name(self) -> str:
        assert isinstance(self.trigger, QueueTrigger)
        return resolve(self.trigger.queue_name)

    @property
    def connection_setting(self) -> str:
        assert isinstance(self.trigger, QueueTrigger)
        return self.trigger.connection or STORAGE_SETTING

    # Timer
    @property
    def schedule(self) -> str:
        assert isinstance(self.trigger, TimerTrigger)
        return resolve(self.trigger.schedule)


def load_app(spec: str) -> func.FunctionApp:
    """Import "module:attr" from the working directory (the project root)."""
    module_name, _, attr = spec.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    app = getattr(importlib.import_module(module_name), attr or "app")
    if not hasattr(app, "get_functions"):
        raise TypeError(f"{spec} is not an azure.functions.FunctionApp")
    return app  # type: ignore[no-any-return]


def discover(app: func.FunctionApp) -> list[AppFunction]:
    found = []
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        name = fn.get_function_name() or fn.get_user_function().__name__
        if trigger is None:
            raise ValueError(f"function {name} has no trigger")
        for binding in fn.get_bindings():
            if binding.get_binding_name() not in _HANDLED:
                log.warning("%s: binding %r is not supported by devhost", name, binding.get_binding_name())
        found.append(AppFunction(name, fn.get_user_function(), trigger, str(Path.cwd())))
    check_names(found)
    return found


def check_names(functions: list[AppFunction]) -> None:
    """Refuse the names the Azure host would reject.

    The pattern is the host's (azure-functions-host, src/WebJobs.Script/Utility.cs,
    FunctionNameValidationRegex, case-insensitive, "host" excluded), checked by
    Host/WorkerFunctionMetadataProvider.cs ValidateMetadata. Duplicates are refused ignoring case:
    the host orders functions ignoring case (FunctionMetadataManager.cs) and keys, logs and the
    admin API address a function by name without case, so two names differing only in case are
    one function to Azure.
    """
    seen: dict[str, str] = {}
    for fn in functions:
        if not _FUNCTION_NAME.fullmatch(fn.name) or fn.name.lower() == "host":
            raise ValueError(
                f"function name {fn.name!r} is not valid on Azure "
                "(a letter, then up to 127 letters, digits, '_' or '-'; not 'host')"
            )
        key = fn.name.lower()
        if key in seen:
            raise ValueError(f"function names {seen[key]!r} and {fn.name!r} are the same to Azure")
        seen[key] = fn.name


def describe(functions: list[AppFunction], base_url: str) -> str:
    """The function list, in the shape Core Tools prints it."""
    lines = ["Functions:", ""]
    for fn in functions:
        if fn.kind == "httpTrigger":
            detail = f"[{','.join(fn.methods)}] {base_url}/{fn.route}"
        elif fn.kind == "queueTrigger":
            detail = f"queueTrigger (queue: {fn.queue_name})"
        elif fn.kind == "timerTrigger":
            assert isinstance(fn.trigger, TimerTrigger)
            startup = ", runOnStartup" if fn.trigger.run_on_startup else ""
            detail = f"timerTrigger (schedule: {fn.schedule}{startup})"
        else:
            detail = f"{fn.kind} (not supported by devhost; will not run)"
        lines += [f"        {fn.name}: {detail}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class TraceContext:
    trace_parent: str = ""
    trace_state: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What the worker passes to a `context` parameter."""

    invocation_id: str
    function_name: str
    function_directory: str
    trace_context: TraceContext
    retry_context: None = None


class FunctionTimeout(Exception):
    """The invocation ran past host.json `functionTimeout`; it counts as a failure."""


class Invoker:
    """Calls user functions: sync ones in a thread pool (like the worker's), async ones on the loop.

    `timeout` is host.json `functionTimeout` in seconds (None: unbounded). Past it the invocation
    fails as on Azure ("Timeout value of ... exceeded"): HTTP answers 500, a queue message is not
    deleted and comes back after visibilityTimeout. Azure then restarts the language worker, which
    kills the function; devhost cannot kill a thread, so a sync function's thread is abandoned (it
    runs on, its result ignored, holding one pool slot) and an async one is cancelled.
    """

    def __init__(self, pool: Executor, timeout: float | None = None):
        self.pool = pool
        self.timeout = timeout

    async def call(self, fn: AppFunction, trigger_value: Any, reason: str, trace_parent: str = "") -> Any:
        invocation_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {fn.trigger.name: trigger_value}
        if fn.wants_context:
            kwargs["context"] = Context(invocation_id, fn.name, fn.directory, TraceContext(trace_parent))
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.name, reason, invocation_id)
        started = time.perf_counter()
        try:
            if fn.is_async:
                running: asyncio.Future[Any] = asyncio.ensure_future(fn.callable(**kwargs))
            else:
                call = functools.partial(contextvars.copy_context().run, fn.callable, **kwargs)
                running = asyncio.get_running_loop().run_in_executor(self.pool, call)
            done, _ = await asyncio.wait([running], timeout=self.timeout)
            if not done:
                running.cancel()  # an async function is cancelled; a thread runs on, abandoned
                raise FunctionTimeout(
                    f"Timeout value of {self.timeout:g}s exceeded by function 'Functions.{fn.name}' "
                    f"(Id: '{invocation_id}')"
                )
            result = running.result()
        except BaseException as exc:
            ms = (time.perf_counter() - started) * 1000
            if isinstance(exc, Exception):
                log.error(
                    "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                    fn.name,
                    invocation_id,
                    ms,
                    exc_info=not isinstance(exc, FunctionTimeout),
                )
                if isinstance(exc, FunctionTimeout):
                    log.error("%s", exc)
            raise
        ms = (time.perf_counter() - started) * 1000
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", fn.name, invocation_id, ms)
        return result
