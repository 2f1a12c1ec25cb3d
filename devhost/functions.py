"""The app's registered functions, and invoking one the way the Python worker does."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
import logging
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
        return (self.trigger.route if self.trigger.route is not None else self.name).strip("/")

    @property
    def methods(self) -> tuple[str, ...]:
        assert isinstance(self.trigger, HttpTrigger)
        if not self.trigger.methods:
            return ALL_METHODS
        return tuple(str(m.value if isinstance(m, Enum) else m).upper() for m in self.trigger.methods)

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
    return found


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


class Invoker:
    """Calls user functions: sync ones in a thread pool (like the worker's), async ones on the loop."""

    def __init__(self, pool: Executor):
        self.pool = pool

    async def call(self, fn: AppFunction, trigger_value: Any, reason: str, trace_parent: str = "") -> Any:
        invocation_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {fn.trigger.name: trigger_value}
        if fn.wants_context:
            kwargs["context"] = Context(invocation_id, fn.name, fn.directory, TraceContext(trace_parent))
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.name, reason, invocation_id)
        started = time.perf_counter()
        try:
            if fn.is_async:
                result = await fn.callable(**kwargs)
            else:
                call = functools.partial(contextvars.copy_context().run, fn.callable, **kwargs)
                result = await asyncio.get_running_loop().run_in_executor(self.pool, call)
        except Exception:
            ms = (time.perf_counter() - started) * 1000
            log.exception(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", fn.name, invocation_id, ms
            )
            raise
        ms = (time.perf_counter() - started) * 1000
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", fn.name, invocation_id, ms)
        return result
