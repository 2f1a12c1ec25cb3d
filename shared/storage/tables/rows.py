"""What every Table adapter writes the same way: rows as dicts, whole-row replaces, JSON as stored,
quoted OData literals."""

from __future__ import annotations

import json
from typing import Any

from azure.data.tables import UpdateMode

Row = dict[str, Any]
REPLACE = {"mode": UpdateMode.REPLACE}


def stored_json(value: Any) -> str:
    """Compact JSON as stored: non-ASCII kept as is (an escaped emoji would take 12 units, not 2)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
