"""Typed values across layers: the version is the ticket's own field inside, never in the API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.ops import openapi_document
from shared.config import Settings
from shared.container import Container, use_container
from shared.domain.models import HistoryEntry, ProcessMessage, Status, Ticket
from shared.domain.public import HistoryEntryPublic
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

ALICE, STAFF = bearer("alice"), bearer("sam", "staff")
PUBLIC_FIELDS = {
    "id",
    "issue_type",
    "description",
    "category",
    "tags",
    "status",
    "user",
    "assigned_team",
    "priority",
    "created_at",
    "updated_at",
    "agent_processed",
    "agent",
    "resolution",
}
AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def container(settings: Settings) -> Iterator[Container]:
    c = Container.in_memory(settings)
    use_container(c)
    yield c
    use_container(None)


def a_ticket(version: int) -> Ticket:
    return Ticket(
        id=7,
        issue_type="VPN drops",
        description="",
        category="vpn",
        tags=[],
        status=Status.NEW,
        user="alice",
        created_at=AT,
        updated_at=AT,
        version=version,
    )


def test_no_ticket_response_shows_the_version(container: Container) -> None:
    created = invoke("tickets_create", "POST", json_body={"issue_type": "VPN drops"}, headers=ALICE)
    tid = str(payload(created)["id"])
    changed = invoke("tickets_status", "POST", json_body={"status": "open"}, headers=STAFF, route={"id": tid})
    assert container.tickets.get(int(tid)).version == 2  # type: ignore[union-attr]
    got = invoke("tickets_get", headers=ALICE, route={"id": tid})
    listed = payload(invoke("tickets_list", headers=ALICE))["results"]

    for ticket in [payload(created), payload(changed), payload(got), *listed]:
        assert set(ticket) == PUBLIC_FIELDS


def test_a_queued_ticket_carries_its_version() -> None:
    message = ProcessMessage(
        ticket_id=7, request_id="r1", requested_by="alice", ticket=a_ticket(3), ticket_version=3
    )
    parsed = ProcessMessage.model_validate_json(message.model_dump_json())
    assert parsed.snapshot() == a_ticket(3) and parsed.snapshot().version == 3  # type: ignore[union-attr]


def test_a_snapshot_of_another_version_is_not_used() -> None:
    """A message queued before tickets carried their version reads as version 1: the worker reads
    the ticket instead, unless the request was accepted on version 1 (which that snapshot is)."""
    old = ProcessMessage(
        ticket_id=7, request_id="r1", requested_by="alice", ticket=a_ticket(3), ticket_version=3
    ).model_dump(mode="json")
    del old["ticket"]["version"]
    assert ProcessMessage.model_validate(old).snapshot() is None
    old["ticket_version"] = 1
    assert ProcessMessage.model_validate(old).snapshot() == a_ticket(1)
    mismatched = ProcessMessage(
        ticket_id=7, request_id="r1", requested_by="alice", ticket=a_ticket(2), ticket_version=3
    )
    assert mismatched.snapshot() is None
    assert json.loads(mismatched.model_dump_json())["ticket"]["version"] == 2


def test_a_shown_history_entry_has_every_stored_field_but_its_keys() -> None:
    stored = set(HistoryEntry.model_fields) - {"ticket_id", "seq"}
    assert set(HistoryEntryPublic.model_fields) == stored | {"id"}


def test_openapi_shows_each_operations_response_model() -> None:
    doc = openapi_document("test")
    paths = doc["paths"]

    def shown(path: str, method: str, status: str) -> dict[str, Any]:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    ticket = shown("/api/tickets/{id}/", "get", "200")
    assert ticket["title"] == "TicketPublic" and "version" not in ticket["properties"]
    assert shown("/api/tickets/", "post", "201")["title"] == "TicketPublic"
    assert shown("/api/tickets/", "get", "200")["title"] == "TicketPage"
    assert shown("/api/tickets/{id}/action-history/", "get", "200")["title"] == "HistoryPage"
    assert shown("/api/tickets/{id}/process/", "post", "202")["title"] == "ProcessAccepted"
    assert shown("/api/tickets/{id}/process/", "post", "200")["title"] == "ProcessSkipped"
    health = [ref["$ref"] for ref in shown("/api/health/", "get", "200")["anyOf"]]
    assert health == ["#/components/schemas/HealthReport", "#/components/schemas/HealthStatus"]
    assert shown("/api/health/", "get", "503") == shown("/api/health/", "get", "200")


def test_every_schema_reference_in_openapi_resolves() -> None:
    doc = openapi_document("test")
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc)))
    assert refs and all(ref.startswith("#/components/schemas/") for ref in refs)
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(doc["components"]["schemas"])
