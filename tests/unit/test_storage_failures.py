"""Storage failures through the real HTTP adapter: an outage is a 503 with Retry-After and a
stable code, a race lost after the retries a 409, never a bare 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from limits.storage import storage_from_string

from shared.config import Settings
from shared.container import Container, use_container
from shared.errors import ConcurrencyConflict
from shared.storage.clients import StorageClients, dev_connection_string
from shared.storage.memory import InMemoryTicketRepository
from shared.storage.ratelimit import RateLimitContentionError
from tests.conftest import bearer
from tests.unit.http_client import invoke, payload

ALICE = {**bearer("alice"), "Accept": "application/problem+json"}


def status_error(status: int, code: str | None = None, kind: type[HttpResponseError] = HttpResponseError):
    error = kind(message=f"HTTP {status} https://acct.table.core.windows.net/t?sig=SECRETSAS")
    error.status_code, error.error_code = status, code
    return error


class FailingTickets(InMemoryTicketRepository):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def get(self, ticket_id: int) -> None:
        raise self.error

    def list_for_owner(self, *args: object) -> None:
        raise self.error


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    yield
    use_container(None)


@pytest.mark.parametrize(
    "error",
    [
        ServiceRequestError("Connection refused"),
        ServiceResponseError("Read timed out"),
        status_error(500, "InternalError"),
        status_error(503, "ServerBusy"),
        status_error(403, "AuthenticationFailed", ClientAuthenticationError),
    ],
    ids=["refused", "timeout", "500", "503-busy", "auth-failed"],
)
def test_a_storage_outage_answers_503_problem_json_with_retry_after(
    settings: Settings, error: Exception
) -> None:
    use_container(Container.in_memory(settings, tickets=FailingTickets(error)))
    for name, route in (("tickets_get", {"id": "1"}), ("tickets_list", None)):
        response = invoke(name, headers=ALICE, route=route)
        assert response.status_code == 503 and response.mimetype == "application/problem+json"
        assert payload(response)["code"] == "storage_unavailable"
        assert response.headers["Retry-After"] == "5"
        assert "SECRETSAS" not in response.get_body().decode()


def test_a_storage_4xx_is_our_bug_a_generic_500(settings: Settings) -> None:
    use_container(Container.in_memory(settings, tickets=FailingTickets(status_error(400, "InvalidInput"))))
    response = invoke("tickets_get", headers=ALICE, route={"id": "1"})
    assert response.status_code == 500 and payload(response)["code"] == "internal_error"
    assert "Retry-After" not in response.headers


def test_a_race_lost_after_the_retries_is_409_concurrent_update(settings: Settings) -> None:
    use_container(Container.in_memory(settings, tickets=FailingTickets(ConcurrencyConflict("ticket 1"))))
    response = invoke("tickets_get", headers=ALICE, route={"id": "1"})
    assert response.status_code == 409 and payload(response)["code"] == "concurrent_update"


def test_process_throttle_contention_is_a_503_with_a_code_and_nothing_is_queued(settings: Settings) -> None:
    memory = type(storage_from_string("memory://"))

    class Contended(memory):  # type: ignore[misc, valid-type]
        def incr(self, key: str, *args: object, **kwargs: object) -> int:
            raise RateLimitContentionError("gave up")

    throttle = Contended()
    container = Container.in_memory(settings, throttle_storage=throttle)
    use_container(container)
    created = invoke("tickets_create", "POST", json_body={"issue_type": "VPN"}, headers=ALICE)
    ticket_id = str(payload(created)["id"])
    response = invoke("agent_process", "POST", headers=ALICE, route={"id": ticket_id})
    assert response.status_code == 503 and payload(response)["code"] == "throttle_contended"
    assert container.queue.messages("agent-actions") == []  # type: ignore[attr-defined]


def test_a_vanished_table_answers_503_and_is_created_again_on_next_use(settings: Settings) -> None:
    """Someone deleted a table, or the emulator restarted empty: provision again, do not 500 forever."""
    missing = status_error(404, "TableNotFound", ResourceNotFoundError)
    container = Container.in_memory(
        settings, tickets=FailingTickets(missing), storage=StorageClients(dev_connection_string(1, 1, 1))
    )
    assert container.provisioner is not None
    container.provisioner._done = True  # as after a successful provisioning
    use_container(container)
    response = invoke("tickets_get", headers=ALICE, route={"id": "1"})
    assert response.status_code == 503 and payload(response)["code"] == "storage_unavailable"
    assert container.provisioner._done is False
