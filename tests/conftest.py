"""Shared fixtures: one Azurite per test session (started on first use), settings, tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devhost import azurite
from shared.auth import mint_token
from shared.config import Settings
from shared.container import Container
from tests.helpers import installed

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
LINK_SECRET = "t3st-l1nk-K9qv2XbR7mWz4LpN8sYc1HdF6gJ0aE5u"
PUBLIC_BASE_URL = "https://resolvemeq.test"
# Outside ENVIRONMENT=local the one-click answer links need their key and public address
# (shared/config.py refuses the settings without them); the tests that build such settings stand
# for a deployment that sets them. The refusals are tested with them removed
# (tests/unit/test_feedback_links.py). Host processes the tests start inherit them.
os.environ.setdefault("FEEDBACK_LINK_SECRET", LINK_SECRET)
os.environ.setdefault("PUBLIC_BASE_URL", PUBLIC_BASE_URL)


@pytest.fixture(scope="session")
def azurite_conn() -> Iterator[str]:
    """A private in-memory Azurite on free ports, provisioned with every table and queue."""
    from shared.storage.provision import provision

    server = azurite.start()
    try:
        provision(server.connection_string)
        yield server.connection_string
    finally:
        server.stop()


@pytest.fixture
def settings() -> Settings:
    # Tests create many tickets per user; the creation throttle has tests of its own.
    return Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET, RATELIMIT_STORAGE_URI="memory://", TICKET_CREATE_THROTTLE_RATE="10000/minute"
    )


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    """An in-memory container that the functions use while the test runs."""
    with installed(Container.in_memory(settings)) as c:
        yield c


def token(sub: str, *roles: str) -> str:
    return mint_token(sub, list(roles), SECRET)


def bearer(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, *roles)}"}


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Each test gets the process environment as it was: code under test that loads
    local.settings.json into it (`manage.main` does, as the CLI must) cannot change the
    settings of the tests that follow."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)
