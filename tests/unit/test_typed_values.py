"""Typed values across layers: the version is the ticket's own field inside, never in the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.domain.models import ProcessMessage, Status, Ticket
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
