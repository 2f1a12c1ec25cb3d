"""Anonymous health on real storage: one ping per instance per cache window, however many calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.config import Settings
from shared.container import Container, use_container
from shared.services.health import PUBLIC_CACHE_SECONDS
from shared.storage.clients import round_trips
from tests.conftest import SECRET, bearer
from tests.unit.http_client import invoke, payload


@pytest.fixture
def azure(azurite_conn: str) -> Iterator[Container]:
    settings = Settings(  # type: ignore[call-arg]
        AzureWebJobsStorage=azurite_conn, AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://"
    )
    container = Container.for_azure(settings)
    use_container(container)
    yield container
    use_container(None)


def test_anonymous_health_costs_one_storage_request_per_window(azure: Container) -> None:
    before = round_trips()
    for _ in range(50):
        response = invoke("ops_health")
        assert response.status_code == 200 and payload(response) == {"status": "ok"}
    assert round_trips() - before == 1 and PUBLIC_CACHE_SECONDS <= 5
    before = round_trips()
    staff = payload(invoke("ops_health", headers=bearer("sam", "staff")))
    assert staff["storage"]["ok"] is True and round_trips() - before > 1  # staff: checked live
