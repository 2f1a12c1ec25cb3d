"""host.json (routing and queue options) and %SETTING% expressions; local.settings.json is read by
shared.local_settings, as `manage` reads it."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORAGE_SETTING = "AzureWebJobsStorage"
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_timespan(value: str) -> float:
    """Seconds in a .NET TimeSpan string: "hh:mm:ss", "hh:mm:ss.fff" or "d.hh:mm:ss"."""
    match = _TIMESPAN.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a timespan (hh:mm:ss): {value!r}")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the Functions host's defaults where the brief sets none."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 2.0
    message_encoding: str = "base64"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> QueueOptions:
        batch_size = min(int(raw.get("batchSize", 16)), 32)  # 32 is the storage service's per-call limit
        return cls(
            batch_size=batch_size,
            new_batch_threshold=int(raw.get("newBatchThreshold", batch_size // 2)),
            max_dequeue_count=int(raw.get("maxDequeueCount", 5)),
            visibility_timeout=parse_timespan(raw.get("visibilityTimeout", "00:00:00")),
            max_polling_interval=parse_timespan(raw.get("maxPollingInterval", "00:00:02")),
            message_encoding=str(raw.get("messageEncoding", "base64")).lower(),
        )


# host.json `functionTimeout`, as the host reads it (azure-functions-host,
# src/WebJobs.Script/Config/ScriptJobHostOptionsSetup.cs, ConfigureFunctionTimeout): 30 minutes when
# absent outside the Consumption plan (Core Tools' case), "-1" for no limit, at least 1 second.
DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0
MIN_FUNCTION_TIMEOUT = 1.0


def parse_function_timeout(value: Any) -> float | None:
    if value is None:
        return DEFAULT_FUNCTION_TIMEOUT
    if str(value).strip() == "-1":
        return None
    seconds = parse_timespan(value)
    if seconds < MIN_FUNCTION_TIMEOUT:
        raise ValueError(f"host.json functionTimeout {value!r} must be at least 00:00:01")
    return seconds


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT  # seconds; None: unbounded


def load_host_json(path: Path) -> HostConfig:
    if not path.exists():
        return HostConfig()
    data = json.loads(path.read_text(encoding="utf-8"))
    extensions = data.get("extensions") or {}
    return HostConfig(
        route_prefix=str((extensions.get("http") or {}).get("routePrefix", "api")).strip("/"),
        queues=QueueOptions.from_json(extensions.get("queues") or {}),
        function_timeout=parse_function_timeout(data.get("functionTimeout")),
    )


def resolve(value: str) -> str:
    """Expand %SETTING% binding expressions (queue names, schedules) from the environment."""

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(f"app setting {name!r} (used as %{name}%) is not set")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", setting, value)
