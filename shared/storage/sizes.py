"""What fits in a Table row, measured as Table Storage measures it.

Table Storage keeps strings as UTF-16: a string property holds at most 32K units (64 KiB),
an entity 1 MiB. Request lengths count characters, but a character can take 2 units (outside
the BMP) and, inside a JSON property, a control character takes 6 ("\\u0001"). So the Table
layout bounds every row by construction: a ticket's description (10,000 characters, at most
20,000 units) is a property of its own, stored raw; its resolution and the agent's summary
(bounded by AGENT_SUMMARY_UNITS) too, as JSON; a history entry keeps its states before and
after in properties of their own and shortens its free text to fit. Every other client
string is short enough that the rest stays within a third of a property even when each
character takes 6 units (tests/integration/test_stored_sizes.py writes the biggest possible
rows to Azurite).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

TABLE_STRING_UNITS = 32 * 1024
AGENT_SUMMARY_UNITS = 30 * 1024  # the JSON of a ticket's `agent` field; larger ones are shrunk
_SURROGATE = re.compile("[\ud800-\udfff]")


def utf16_units(text: str) -> int:
    """How much of a Table string property `text` takes."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def json_units(value: Any) -> int:
    """How much of a Table string property `value` takes as JSON."""
    return utf16_units(json.dumps(value, ensure_ascii=False, default=str))


def storable_json(value: Any, budget: int) -> Any:
    """`value` (JSON-like) made storable: lone surrogates replaced, and when its JSON takes more
    than `budget` units, every string cut to the longest length that fits (found by bisection).

    The last line of defence for what an agent returns: a ticket that cannot be stored could
    never be committed, so a summary is shortened rather than refused."""
    value = _map_strings(value, lambda s: _SURROGATE.sub("\ufffd", s))
    if json_units(value) <= budget:
        return value

    def cut(value: Any, length: int) -> Any:
        return _map_strings(value, lambda s: s[:length])

    if json_units(cut(value, 0)) > budget:
        return {}
    low, high = 0, _longest_string(value)
    while low < high:
        mid = (low + high + 1) // 2
        if json_units(cut(value, mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    return cut(value, low)


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, change) for v in value]
    return value


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((_longest_string(v) for v in children), default=0)
