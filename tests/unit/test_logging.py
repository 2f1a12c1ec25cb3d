"""Structured logs: one JSON object a line, carrying the invocation id."""

from __future__ import annotations

import io
import json
import logging

from shared import observability


def test_log_lines_are_json_with_the_invocation_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    handler.addFilter(observability.InvocationFilter())
    logger = logging.getLogger("test.structured")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with observability.invocation("inv-42", "tickets_get"):
            logger.info("ticket %s read", 7, extra={"fields": {"ticket_id": 7}})
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["invocation_id"] == "inv-42" and inside["message"] == "ticket 7 read"
    assert inside["ticket_id"] == 7 and inside["level"] == "INFO" and inside["logger"] == "test.structured"
    assert outside["invocation_id"] == "-"
