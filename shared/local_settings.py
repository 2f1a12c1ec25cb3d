"""local.settings.json into the environment, as Core Tools reads it; for devhost and `manage`.

Never on an Azure host, which does not read that file either: a copy that slipped into a
deployment must not put the dev secret or the emulator into production settings.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from shared.config import on_azure_host

FILE, SAMPLE = "local.settings.json", "local.settings.sample.json"


def load_local_settings(root: Path, *, create_from_sample: bool = False) -> dict[str, Any]:
    """Export the file's Values (the environment wins) and return its "Host" section
    (LocalHttpPort, CORS, CORSCredentials). With `create_from_sample`, a missing file is first
    copied from the sample (the local host's first run)."""
    if on_azure_host():
        return {}
    path, sample = root / FILE, root / SAMPLE
    if not path.exists():
        if not (create_from_sample and sample.exists()):
            return {}
        shutil.copyfile(sample, path)
        print(f"Created {path.name} from {sample.name}.", flush=True)
    data = json.loads(path.read_text(encoding="utf-8"))
    for name, value in (data.get("Values") or {}).items():
        os.environ.setdefault(name, "" if value is None else str(value))
    return dict(data.get("Host") or {})
