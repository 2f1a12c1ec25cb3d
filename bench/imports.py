"""Cold import time of the app against its runtime dependencies alone, in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.common import median

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DEPS = (
    "azure.functions",
    "azure.data.tables",
    "azure.storage.queue",
    "sentry_sdk",
    "pydantic",
    "pydantic_settings",
    "limits",
    "jwt",
    "httpx",
)
TIMED = "import time\nt = time.perf_counter()\nimport {modules}\nprint((time.perf_counter() - t) * 1000)\n"
SUBJECTS = {"function_app": ("function_app",), "runtime_deps_only": RUNTIME_DEPS}


def _import_ms(modules: tuple[str, ...]) -> float:
    """Milliseconds the imports take inside a new interpreter (its own start-up not counted)."""
    code = TIMED.format(modules=", ".join(modules))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_import_ms(runs: int = 7) -> dict[str, float]:
    """Median of `runs` each, interleaved, after one discarded run each (bytecode caches written)."""
    times: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    for attempt in range(runs + 1):
        for name, modules in SUBJECTS.items():
            ms = _import_ms(modules)
            if attempt:
                times[name].append(ms)
    return {name: round(median(values), 1) for name, values in times.items()}
