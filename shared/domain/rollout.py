"""Gradual rollout: a stable hash puts each ticket in a fixed bucket 0..9999.

A ticket is in when its bucket is below percent * 100, so one that is in at 10 % stays
in at 50 %, and every instance and every run agrees.
"""

from __future__ import annotations

import hashlib


def bucket(ticket_id: int) -> int:
    digest = hashlib.sha256(f"resolvemeq-rollout:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def in_rollout(ticket_id: int, percent: int) -> bool:
    return bucket(ticket_id) < percent * 100
