"""Every stored string fits Table Storage (32K UTF-16 units a property) whatever a client sends.

Lengths are counted in characters, but a control character takes 6 units inside JSON and a
character outside the BMP takes 2: these tests send the worst of each, through the real
function on Azurite, and commit the biggest change the agent can make to the biggest ticket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.domain.models import (
    ActionType,
    HistoryEntry,
    Principal,
    Priority,
    ProcessMessage,
    Resolution,
    Status,
    StatusChange,
    Ticket,
    TicketCreate,
)
from shared.ports import TicketRepository
from shared.services.tickets import TicketService
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.keys import TICKET_ROW, history_row, ticket_key
from shared.storage.memory import InMemoryTicketRepository
from shared.storage.sizes import AGENT_SUMMARY_UNITS, TABLE_STRING_UNITS, json_units, utf16_units
from tests.conftest import SECRET, bearer
from tests.integration.test_ticket_repository_contract import table_repo
from tests.unit.http_client import invoke, payload

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
CTRL = "\x01"  # 6 units in JSON: the worst a character can do
ALL_CONTROLS = "".join(chr(i) for i in range(32))
STAFF = Principal(sub="sam", roles=frozenset({"staff"}))


@pytest.fixture(params=["memory", "table"])
def repo(request: pytest.FixtureRequest) -> TicketRepository:
    if request.param == "memory":
        return InMemoryTicketRepository()
    return table_repo(request.getfixturevalue("azurite_conn"))


def biggest_create() -> TicketCreate:
    return TicketCreate(issue_type=CTRL * 100, description=CTRL * 10_000, tags=[CTRL * 50] * 20)


def biggest_caller() -> Principal:
    return Principal(sub=CTRL * 170)  # "%01" in the owner key: 510 of the 512 characters a key may take


def maximal_summary() -> dict[str, Any]:
    summary: dict[str, Any] = {"reasoning": ""}
    summary["reasoning"] = CTRL * ((AGENT_SUMMARY_UNITS - json_units(summary)) // 6)
    assert AGENT_SUMMARY_UNITS - 6 < json_units(summary) <= AGENT_SUMMARY_UNITS
    return summary


def biggest_change(ticket: Ticket) -> tuple[Ticket, HistoryEntry]:
    """What an auto-resolution does to a ticket, with every field the agent fills at its largest,
    and a resolution whose texts are as long as feedback may make them."""
    resolution = Resolution(
        autonomous_action="AUTO_RESOLVE", feedback_text=CTRL * 2000, reopened_reason=CTRL * 1000
    )
    changed = ticket.model_copy(
        update={
            "status": Status.RESOLVED,
            "assigned_team": CTRL * 100,
            "priority": Priority.CRITICAL,
            "agent_processed": True,
            "agent": maximal_summary(),
            "resolution": resolution,
            "updated_at": NOW,
            "version": ticket.version + 1,
        }
    )
    entry = HistoryEntry(
        ticket_id=ticket.id,
        seq=changed.version,
        action_type=ActionType.AUTO_RESOLVE,
        executed_at=NOW,
        executed_by="autonomous_agent",
        agent_reasoning=CTRL * 20_000,
        action_params={"solution": {"steps": [CTRL * 500] * 40}, "agent": {"name": CTRL * 1000}},
        before_state=ticket.state(),
        after_state=changed.state(),
        rollback_possible=True,
    )
    return changed, entry


def stored_ticket(repo: TicketRepository, ticket_id: int) -> Ticket:
    ticket = repo.get(ticket_id)
    assert ticket is not None
    return ticket


def test_the_biggest_ticket_is_stored_and_the_biggest_change_commits(repo: TicketRepository) -> None:
    service = TicketService(repo, lambda: NOW)
    shown = service.create(biggest_caller(), biggest_create())
    ticket = repo.get(shown.id)
    assert ticket is not None and ticket.public() == shown
    assert [t.id for t in repo.list_for_owner(ticket.user, None, 10, None).results] == [ticket.id]

    changed, entry = biggest_change(ticket)
    repo.save(changed, [entry])
    assert repo.get(ticket.id) == changed  # the maximal summary is kept whole
    stored = repo.get_entry(ticket.id, entry.seq)
    assert stored is not None and stored.after_state == entry.after_state
    assert entry.agent_reasoning.startswith(stored.agent_reasoning)  # free text shortened to fit, if needed

    after = service.change_status(
        STAFF, ticket.id, StatusChange(status=Status.OPEN, reason=CTRL * 1000, assigned_team=CTRL * 100)
    )
    stored_after = repo.get(ticket.id)
    assert stored_after is not None and stored_after.public() == after and stored_after.version == 3


def test_the_biggest_rows_fit_with_room_to_spare(azurite_conn: str) -> None:
    """The figures behind the layout: every string property of the biggest rows, in UTF-16 units."""
    repo = table_repo(azurite_conn)
    ticket = stored_ticket(
        repo, TicketService(repo, lambda: NOW).create(biggest_caller(), biggest_create()).id
    )
    changed, entry = biggest_change(ticket)
    repo.save(changed, [entry])
    table = StorageClients(azurite_conn).table(names.TICKETS)
    row = table.get_entity(ticket_key(ticket.id), TICKET_ROW)
    sizes = {k: utf16_units(v) for k, v in row.items() if isinstance(v, str)}
    assert sizes["Description"] == 10_000 and sizes["Agent"] <= AGENT_SUMMARY_UNITS
    assert sizes["Data"] <= TABLE_STRING_UNITS // 3, sizes  # room for fields yet to come
    assert sizes["Resolution"] <= TABLE_STRING_UNITS * 2 // 3, sizes
    query = f"PartitionKey eq '{ticket_key(ticket.id)}' and RowKey gt 'h' and RowKey lt 'i'"
    [history] = table.query_entities(query)
    entry_sizes = {k: utf16_units(v) for k, v in history.items() if isinstance(v, str)}
    assert max(entry_sizes.values()) <= TABLE_STRING_UNITS, entry_sizes
    print("\nticket row (UTF-16 units):", sizes, "\nhistory row:", entry_sizes)


def test_an_oversized_agent_summary_is_shortened_not_refused(azurite_conn: str) -> None:
    repo = table_repo(azurite_conn)
    ticket = stored_ticket(
        repo, TicketService(repo, lambda: NOW).create(Principal(sub="alice"), TicketCreate(issue_type="x")).id
    )
    huge = {"reasoning": CTRL * 40_000, "solution": {"steps": ["step " * 200] * 100}, "confidence": 0.4}
    changed, entry = biggest_change(ticket)
    changed.agent = huge
    repo.save(changed, [entry])
    stored = repo.get(ticket.id)
    assert stored is not None and stored.agent is not None
    assert json_units(stored.agent) <= AGENT_SUMMARY_UNITS and stored.agent["confidence"] == 0.4
    assert huge["reasoning"].startswith(stored.agent["reasoning"]) and stored.agent["reasoning"]


@pytest.fixture
def azure(azurite_conn: str) -> Iterator[Container]:
    settings = Settings(  # type: ignore[call-arg]
        AzureWebJobsStorage=azurite_conn,
        AUTH_JWT_SECRET=SECRET,
        RATELIMIT_STORAGE_URI="memory://",
        TICKET_CREATE_THROTTLE_RATE="10000/minute",
    )
    container = Container.for_azure(settings)
    use_container(container)
    yield container
    use_container(None)


@pytest.mark.parametrize(
    "description",
    [
        CTRL * 5_350,  # accepted and then never committable, before
        CTRL * 10_000,  # a 500 and an orphan index row, before
        (ALL_CONTROLS * 313)[:10_000],
        "😀" * 10_000,
        '"\\' * 5_000,
    ],
    ids=["ctrl-5350", "ctrl-10000", "all-controls", "astral", "quotes"],
)
def test_a_maximal_description_through_the_api_is_stored_and_processed(
    description: str, azure: Container
) -> None:
    user = bearer("alice-sizes")
    body = json.dumps({"issue_type": CTRL * 100, "description": description}, ensure_ascii=False).encode()
    assert len(body) < 64 * 1024  # the body limit: an emoji is 4 bytes raw, 12 as an escape
    response = invoke(
        "tickets_create", "POST", body=body, headers=user | {"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.get_body()[:300]
    ticket = payload(response)
    got = invoke("tickets_get", headers=user, route={"id": str(ticket["id"])})
    assert got.status_code == 200 and payload(got) == ticket and ticket["description"] == description
    outcome = azure.agent_worker.execute(
        ProcessMessage(ticket_id=ticket["id"], request_id=f"r{ticket['id']}", requested_by="alice-sizes")
    )
    processed = azure.tickets.get(ticket["id"])
    assert processed is not None and processed.agent_processed and processed.version == 2, outcome
    assert processed.description == description


def test_rows_written_before_the_size_layout_still_read(azurite_conn: str) -> None:
    """The previous release kept the whole ticket (and the whole entry) in Data."""
    repo = table_repo(azurite_conn)
    ticket = Ticket(
        id=repo.next_id(),
        issue_type="VPN drops",
        description="since Monday",
        category="vpn",
        tags=["remote"],
        status=Status.RESOLVED,
        user="alice-legacy",
        created_at=NOW,
        updated_at=NOW,
        agent={"confidence": 0.9},
        resolution=Resolution(autonomous_action="AUTO_RESOLVE"),
        version=2,
    )
    entry = HistoryEntry(
        ticket_id=ticket.id,
        seq=2,
        action_type=ActionType.AUTO_RESOLVE,
        executed_at=NOW,
        executed_by="autonomous_agent",
        before_state={"status": "new"},
        after_state={"status": "resolved"},
    )
    table = StorageClients(azurite_conn).table(names.TICKETS)
    key = ticket_key(ticket.id)
    table.create_entity(
        {"PartitionKey": key, "RowKey": TICKET_ROW, "Owner": ticket.user, "Status": "resolved", "Version": 2}
        | {"Data": ticket.model_dump_json()}
    )
    table.create_entity({"PartitionKey": key, "RowKey": history_row(2), "Data": entry.model_dump_json()})
    assert repo.get(ticket.id) == ticket
    assert repo.get_entry(ticket.id, 2) == entry
    changed = ticket.model_copy(update={"status": Status.OPEN, "version": 3})
    repo.save(changed, [entry.model_copy(update={"seq": 3})])
    assert repo.get(ticket.id) == changed
