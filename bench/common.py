"""What every benchmark shares: the secret, the workload texts, timing statistics."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
RESET: dict[str, Any] = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}
RANSOMWARE: dict[str, Any] = {
    "issue_type": "Ransomware encrypted my files",
    "description": "Ransomware encrypted my files and there is a ransom note on the screen.",
    "category": "security",
}
VAGUE: dict[str, Any] = {"issue_type": "Problem", "description": "it doesn't work", "category": "other"}
PRINTER: dict[str, Any] = {
    "issue_type": "Printer",
    "description": "The office printer shows a paper jam error.",
    "category": "printer",
}
# Settings shared by the in-process container and the host: no throttle or cap gets in the way.
SETTINGS: dict[str, str] = {
    "AUTH_JWT_SECRET": SECRET,
    "ENVIRONMENT": "local",
    "SENTRY_DSN": "",
    "AGENT_API_URL": "",
    "RATELIMIT_STORAGE_URI": "",
    "AGENT_ACTIONS_THROTTLE_RATE": "100000/minute",
    "TICKET_CREATE_THROTTLE_RATE": "100000/minute",
    "MAX_AUTONOMOUS_ACTIONS_PER_HOUR": "100000",
    "MAX_AUTONOMOUS_ACTIONS_PER_DAY": "100000",
    "ROLLBACK_THROTTLE_RATE": "100000/hour",
    "AUTO_PAUSE_ROLLBACKS_PER_HOUR": "100000",
}


def percentile(samples: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50_p99(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": round(percentile(ms, 50), 2), "p99": round(percentile(ms, 99), 2)}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
