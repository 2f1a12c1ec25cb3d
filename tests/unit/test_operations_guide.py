"""The operations guide's alert rules name tags and metrics the code really emits.

docs/operations.md states the four Sentry alert rules between `alert-rules` markers, naming
`tag:value` pairs and metric names in backticks. Here each is looked for in what a local capture
server receives from the real code paths: an auto-resolution, a failed action, a failing agent
service and a rollback. A rule naming a tag the code does not send would never fire.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import sentry_sdk

from shared import observability
from shared.agent.client import AgentApiClient
from shared.container import Container, use_container
from shared.domain.models import Principal, TicketCreate
from shared.errors import AgentUnavailable
from tests.helpers import SentryCapture
from tests.unit.test_sentry import capture, queue_call, sentry_items, sentry_off_afterwards, start_sentry

__all__ = ["capture", "sentry_off_afterwards"]  # fixtures used by name

GUIDE = Path(__file__).parents[2] / "docs" / "operations.md"


def alert_rules() -> str:
    text = GUIDE.read_text()
    match = re.search(r"<!-- alert-rules.*?-->(.*)<!-- /alert-rules -->", text, re.S)
    assert match, "docs/operations.md lost its alert-rules markers"
    return match.group(1)


def named_in_rules() -> tuple[set[tuple[str, str]], set[str]]:
    """The `tag:value` pairs and the metric names (dotted words) the rules name."""
    quoted = re.findall(r"`([^`]+)`", alert_rules())
    tags = {tuple(q.split(":", 1)) for q in quoted if re.fullmatch(r"[a-z_.]+:[a-z_]+", q)}
    metrics = {q for q in quoted if re.fullmatch(r"[a-z_]+\.[a-z_]+", q)}
    return tags, metrics  # type: ignore[return-value]


def test_the_rules_name_the_four_signals() -> None:
    tags, metrics = named_in_rules()
    assert {("component", "autonomous_agent"), ("outcome", "failed")} <= tags
    assert {("component", "agent_api"), ("event", "rollback")} <= tags
    assert metrics == {"agent.confidence"}
    titles = re.findall(r"^\d\. \*\*(.+?)\.\*\*", alert_rules(), re.M)
    assert titles == ["Action failure rate", "Low confidence", "Agent API errors", "Excessive rollbacks"]


def emitted(items: list[dict[str, Any]]) -> tuple[set[tuple[str, str]], set[str]]:
    """Every tag pair of the captured events and metric attributes, and every metric name."""
    tags: set[tuple[str, str]] = set()
    metrics: set[str] = set()
    for item in items:
        tags |= {(k, str(v)) for k, v in item.get("tags", {}).items()}
        for metric in item.get("items", []):
            if "name" in metric:
                metrics.add(metric["name"])
                tags |= {(k, str(v["value"])) for k, v in metric.get("attributes", {}).items()}
    return tags, metrics


def failing_agent_service() -> None:
    service = httpx.MockTransport(lambda request: httpx.Response(503, json={"error": "down"}))
    client = AgentApiClient(
        "https://agent.invalid/analyse", "key", timeout=1.0, retries=0, backoff=0.0, transport=service
    )
    try:
        client.analyse({"id": 1, "issue_type": "VPN", "description": "down", "category": "vpn"})
    except AgentUnavailable:
        pass


def test_every_tag_and_metric_of_the_rules_is_emitted_by_the_code(capture: SentryCapture) -> None:
    settings = start_sentry(capture.dsn)
    container = Container.in_memory(settings)
    use_container(container)
    alice = Principal(sub="alice")
    reset = TicketCreate(issue_type="Password reset", description="I forgot my password, please reset it.")
    ticket = container.ticket_service.create(alice, reset)
    queue_call("agent_run", {"ticket_id": ticket.id, "request_id": "r1", "requested_by": "alice"})  # acts
    try:
        queue_call("agent_run", {"ticket_id": "not-a-number"})  # a failed action
    except ValueError:
        pass
    failing_agent_service()
    sentry_sdk.get_isolation_scope().clear()
    observability.SentryTelemetry().rollback(ticket.id, "AUTO_RESOLVE", "ada")

    sent_tags, sent_metrics = emitted(sentry_items(capture))
    tags, metrics = named_in_rules()
    assert tags <= sent_tags, f"named in the guide but never sent: {tags - sent_tags}"
    assert metrics <= sent_metrics, f"named in the guide but never sent: {metrics - sent_metrics}"
