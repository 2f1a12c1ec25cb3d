"""Binding metadata of a FunctionApp, as the Python worker's indexer reports it and as devhost sees it.

`python -m tests.devhost.indexer_view worker|devhost path/to/app.py` prints one JSON list. Each view
runs in its own process: azure.functions lets `get_functions()` run once per app.

The worker side is the real indexer of the `azure-functions-runtime` package (the Python worker's
core: `loader.index_function_app`, `loader.process_indexed_function`), fed stand-ins for the gRPC
message classes it would get from the host (plain attribute holders: the indexer only constructs
them and reads `BindingInfo`'s direction and data-type constants).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

DEFAULT_CONNECTION = "AzureWebJobsStorage"  # the host's default when a binding names none


class _Message:
    def __init__(self, **fields: Any):
        self.__dict__.update(fields)


class _BindingInfo(_Message):
    # enum values of the host's protobuf BindingInfo (Direction and DataType)
    out, inout = 1, 2
    undefined, string, binary, stream = 0, 1, 2, 3


setattr(_BindingInfo, "in", 0)  # "in" is a keyword
PROTOS = types.SimpleNamespace(
    BindingInfo=_BindingInfo, RpcFunctionMetadata=_Message, RpcRetryOptions=_Message
)


def _entry(name: str, trigger: dict[str, Any]) -> dict[str, Any]:
    kind = trigger["type"]
    entry: dict[str, Any] = {"name": name, "trigger": kind}
    if kind == "httpTrigger":
        methods = trigger.get("methods")
        entry["route"] = (trigger.get("route") or name).strip("/")
        entry["methods"] = sorted(m.upper() for m in methods) if methods else None
    elif kind == "queueTrigger":
        entry["queue"] = trigger["queueName"]
        entry["connection"] = trigger.get("connection") or DEFAULT_CONNECTION
    elif kind == "timerTrigger":
        entry["schedule"] = trigger["schedule"]
        entry["run_on_startup"] = bool(trigger.get("runOnStartup"))
    return entry


def worker_view(app_file: Path) -> list[dict[str, Any]]:
    from azure_functions_runtime import loader
    from azure_functions_runtime.bindings import meta
    from azure_functions_runtime.functions import Registry

    sys.path.insert(0, str(app_file.parent))
    meta.load_binding_registry()  # what the worker does when it starts
    indexed = loader.index_function_app(str(app_file))
    metadata, _ = loader.process_indexed_function(PROTOS, Registry(), indexed, str(app_file.parent))
    view = []
    for function in metadata:
        bindings = [json.loads(raw) for raw in function.raw_bindings]
        [trigger] = [b for b in bindings if b["type"].endswith("Trigger")]
        view.append(_entry(function.name, trigger))
    return sorted(view, key=lambda e: e["name"])


def devhost_view(app_file: Path) -> list[dict[str, Any]]:
    from azure.functions.decorators.timer import TimerTrigger

    from devhost.functions import discover, load_app

    sys.path.insert(0, str(app_file.parent))
    view = []
    for fn in discover(load_app(f"{app_file.stem}:app")):
        entry: dict[str, Any] = {"name": fn.name, "trigger": fn.kind}
        if fn.kind == "httpTrigger":
            entry["route"] = fn.route
            entry["methods"] = sorted(fn.methods) if fn.trigger.methods else None  # type: ignore[attr-defined]
        elif fn.kind == "queueTrigger":
            entry["queue"] = fn.trigger.queue_name  # type: ignore[attr-defined]  # before %...% resolution
            entry["connection"] = fn.connection_setting
        elif fn.kind == "timerTrigger":
            assert isinstance(fn.trigger, TimerTrigger)
            entry["schedule"] = fn.trigger.schedule
            entry["run_on_startup"] = bool(fn.trigger.run_on_startup)
        view.append(entry)
    return sorted(view, key=lambda e: e["name"])


if __name__ == "__main__":
    side, path = sys.argv[1], Path(sys.argv[2]).resolve()
    print(json.dumps((worker_view if side == "worker" else devhost_view)(path)))
