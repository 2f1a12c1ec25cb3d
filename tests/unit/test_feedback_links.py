"""One-click answers through the real function adapter, on in-memory storage with an injected clock.

A ticket is auto-resolved by the real worker (embedded agent) and followed up by the real follow-up
consumer, so the links used are the ones the notification carries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
import pytest
from pydantic import ValidationError

from shared.config import LOCAL_BASE_URL, LOCAL_LINK_SECRET, Settings
from shared.container import Container, link_settings, use_container
from shared.domain import links
from shared.domain.models import (
    ActionType,
    Category,
    FollowupMessage,
    Principal,
    ProcessMessage,
    RequestRecord,
    ResolutionOutcome,
    Ticket,
    TicketCreate,
)
from shared.services.links import answer_links
from shared.storage.memory import InMemoryMessageQueue
from tests.conftest import LINK_SECRET, SECRET, bearer
from tests.unit.http_client import invoke, payload

DELAY = 60
WINDOW = 7 * 86400
ALICE = Principal(sub="alice")
DESCRIPTION = "I forgot my password and need to reset it. My old one was hunter2."
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON_ACCEPT = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def build(clock: Clock, **values: str) -> Container:
    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET,
        RATELIMIT_STORAGE_URI="memory://",
        FOLLOWUP_DELAY_SECONDS=str(DELAY),
        FEEDBACK_WINDOW_SECONDS=str(WINDOW),
        **values,
    )
    return Container.in_memory(settings, clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def c(clock: Clock) -> Iterator[Container]:
    container = build(clock)
    use_container(container)
    yield container
    use_container(None)


def followed_up(c: Container, clock: Clock, owner: Principal = ALICE) -> tuple[int, dict[str, str]]:
    """An auto-resolved ticket whose follow-up went out: its id and the notification's links."""
    ticket = c.ticket_service.create(
        owner, TicketCreate(issue_type="Password reset", description=DESCRIPTION, category=Category.ACCOUNT)
    )
    outcome = c.agent_worker.execute(
        ProcessMessage(ticket_id=ticket.id, request_id=f"r{ticket.id}", requested_by=owner.sub)
    )
    assert outcome == "AUTO_RESOLVE"
    assert isinstance(c.queue, InMemoryMessageQueue)
    clock.now += timedelta(seconds=DELAY)
    c.sweeper.run()  # the follow-up is due: the sweeper sends its message
    [message] = [
        FollowupMessage.model_validate(p)
        for q, p, _ in c.queue.sent
        if q == "followups" and p["ticket_id"] == ticket.id
    ]
    assert c.followup_service.run(message) == "sent"
    [notice] = [n for n in c.notifications.list(owner.sub, 100, None).results if n.ticket_id == ticket.id]
    return ticket.id, notice.links


def token_of(url: str) -> str:
    path = urlsplit(url).path
    assert path.startswith("/api/feedback/") and path.endswith("/")
    return path.removeprefix("/api/feedback/").removesuffix("/")


def get(token: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return invoke("feedback_link_page", "GET", headers=headers or BROWSER, route={"token": token})


def post(token: str, body: bytes = b"", headers: dict[str, str] | None = None) -> func.HttpResponse:
    headers = {**FORM, **BROWSER, **(headers or {})}
    return invoke("feedback_link_answer", "POST", body=body, headers=headers, route={"token": token})


def text(response: func.HttpResponse) -> str:
    return response.get_body().decode()


def snapshot(c: Container, ticket_id: int) -> Any:
    """Everything an answer could change: the ticket, its history, the notifications, the ledger."""
    ticket = c.tickets.get(ticket_id)
    assert ticket is not None
    history = [e.model_dump() for e in c.tickets.history(ticket_id, 100, None).results]
    notices = [n.model_dump() for n in c.notifications.list(None, 100, None).results]
    ledger = sorted(str(r) for r in c.ledger._records.get(ticket_id, {}).values())  # type: ignore[attr-defined]
    return ticket.model_dump(), history, notices, ledger


def kinds(c: Container, ticket_id: int) -> list[str]:
    return [e.action_type.value for e in reversed(c.tickets.history(ticket_id, 100, None).results)]


def stored(c: Container, ticket_id: int) -> Ticket:
    ticket = c.tickets.get(ticket_id)
    assert ticket is not None
    return ticket


def test_the_followup_carries_a_yes_and_a_no_link_to_this_app(c: Container, clock: Clock) -> None:
    ticket_id, found = followed_up(c, clock)
    assert set(found) == {"ticket", "yes", "no"} and found["yes"] != found["no"]
    for url in (found["yes"], found["no"]):
        assert url.startswith(c.settings.public_base_url + "/api/feedback/") and len(url) < 200
        claims = links.verify(token_of(url), link_settings(c.settings).keys, clock.now)
        assert claims.ticket_id == ticket_id and claims.action_seq == 2 and claims.owned_by("alice")
        # It expires when the feedback window ends: the resolution's time plus the window.
        assert claims.expires_at == clock.now - timedelta(seconds=DELAY) + timedelta(seconds=WINDOW)
    assert links.verify(token_of(found["yes"]), link_settings(c.settings).keys, clock.now).answer is True


def test_a_get_shows_the_page_and_changes_nothing(c: Container, clock: Clock) -> None:
    """Link scanners and chat unfurlers fetch every link: a GET, with any Accept, records nothing."""
    ticket_id, found = followed_up(c, clock)
    before = snapshot(c, ticket_id)
    for url in (found["yes"], found["no"]):
        for headers in (BROWSER, {}, {"Accept": "*/*"}, {"User-Agent": "Slackbot-LinkExpanding 1.0"}):
            response = get(token_of(url), headers)
            assert response.status_code == 200 and response.mimetype == "text/html"
    assert snapshot(c, ticket_id) == before
    page = text(get(token_of(found["no"])))
    assert f"#{ticket_id}" in page and "No, still broken" in page and "hunter2" not in page
    assert page.count("<form") == 1 and '<form method="post">' in page and page.count("<button") == 1
    assert page.count('type="radio" name="satisfaction_score"') == 6  # no rating, 1..5
    assert '<label class="block" for="feedback_text">' in page and 'id="feedback_text"' in page
    assert 'name="viewport" content="width=device-width' in page
    # Self-contained: no script, no external resource, nothing but this origin to post to.
    assert "<script" not in page and "http://" not in page and "https://" not in page and " src=" not in page
    headers = get(token_of(found["no"])).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_style_is_exactly_what_the_csp_admits() -> None:
    import base64
    import hashlib

    from functions.feedback_links import CSP, STYLE

    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CSP


def test_a_get_asking_for_json_previews_the_answer(c: Container, clock: Clock) -> None:
    ticket_id, found = followed_up(c, clock)
    response = get(token_of(found["yes"]), JSON_ACCEPT)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert payload(response)["ticket_id"] == ticket_id and payload(response)["resolution_confirmed"] is True


def test_posting_the_yes_link_closes_the_ticket_as_the_owner_without_a_login(
    c: Container, clock: Clock
) -> None:
    ticket_id, found = followed_up(c, clock)
    response = post(token_of(found["yes"]), b"satisfaction_score=5&feedback_text=thanks")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "Thank you" in text(response) and "closed" in text(response)
    ticket = stored(c, ticket_id)
    assert ticket.status == "closed" and ticket.resolution is not None
    assert (
        ticket.resolution.outcome == ResolutionOutcome.CONFIRMED and ticket.resolution.satisfaction_score == 5
    )
    assert ticket.resolution.feedback_text == "thanks"
    assert kinds(c, ticket_id) == ["AUTO_RESOLVE", "FOLLOWUP_SENT", "FEEDBACK_RECEIVED"]
    assert c.tickets.history(ticket_id, 1, None).results[0].executed_by == "alice"


def test_posting_the_no_link_reopens_exactly_like_the_api(c: Container, clock: Clock) -> None:
    by_api, _ = followed_up(c, clock)
    by_link, found = followed_up(c, clock)
    body = {"resolution_confirmed": False, "satisfaction_score": 0, "feedback_text": "still broken"}
    api = invoke(
        "tickets_resolution_feedback",
        "POST",
        json_body=body,
        headers=bearer("alice"),
        route={"id": str(by_api)},
    )
    link = post(token_of(found["no"]), b"satisfaction_score=0&feedback_text=still+broken", JSON_ACCEPT)
    assert api.status_code == link.status_code == 200
    assert {**payload(api), "ticket_id": 0} == {**payload(link), "ticket_id": 0}
    assert payload(link)["ticket_reopened"] is True
    a, b = stored(c, by_api), stored(c, by_link)
    # Everything but identity, the agent's run and when each follow-up went out.
    same: Any = {"id": True, "created_at": True, "updated_at": True, "agent": True, "done_at": True}
    same["resolution"] = {"followup_sent_at", "resolved_at"}
    assert a.model_dump(exclude=same) == b.model_dump(exclude=same)
    assert b.status == "escalated" and b.priority == "high" and b.resolution is not None
    assert b.resolution.outcome == ResolutionOutcome.FAILED and b.resolution.satisfaction_score is None
    assert b.resolution.reopened and b.resolution.reopened_reason == "still broken"

    def steps(ticket_id: int) -> list[Any]:
        return [
            (e.seq, e.action_type, e.executed_at, e.executed_by, e.action_params, e.agent_reasoning)
            for e in c.tickets.history(ticket_id, 100, None).results
            if e.seq > 3  # the answer's: FEEDBACK_RECEIVED, REOPEN
        ]

    assert steps(by_api) == steps(by_link)
    assert kinds(c, by_link) == ["AUTO_RESOLVE", "FOLLOWUP_SENT", "FEEDBACK_RECEIVED", "REOPEN"]
    staff = {n.ticket_id: n for n in c.notifications.list(None, 100, None).results if n.kind == "reopened"}
    assert set(staff) == {by_api, by_link} and staff[by_link].title == f"Ticket {by_link} reopened"


def test_the_same_link_again_is_410_and_changes_nothing(c: Container, clock: Clock) -> None:
    ticket_id, found = followed_up(c, clock)
    assert post(token_of(found["no"]), b"feedback_text=broken").status_code == 200
    before = snapshot(c, ticket_id)
    for _ in range(3):
        again = post(token_of(found["no"]), b"satisfaction_score=1&feedback_text=again")
        assert again.status_code == 410 and again.mimetype == "text/html"
        assert "used already" in text(again)
        assert get(token_of(found["no"])).status_code == 410  # the page says so too
    problem = post(token_of(found["no"]), b"", {"Accept": "application/problem+json"})
    assert problem.status_code == 410 and problem.mimetype == "application/problem+json"
    assert payload(problem)["code"] == "link_used"
    assert snapshot(c, ticket_id) == before


def test_the_other_link_is_another_answer_that_replaces_the_first_as_in_the_api(
    c: Container, clock: Clock
) -> None:
    """Each link is single-use, not each follow-up: "yes" after "no" is a second answer, taken
    as the API takes one (it replaces the first; both are in the history)."""
    ticket_id, found = followed_up(c, clock)
    assert post(token_of(found["no"])).status_code == 200
    assert post(token_of(found["yes"])).status_code == 200
    ticket = stored(c, ticket_id)
    assert ticket.status == "closed" and ticket.resolution is not None
    assert ticket.resolution.previous_answer is not None
    assert ticket.resolution.previous_answer.resolution_confirmed is False


@pytest.mark.parametrize("position", [0, 1, 5, 20, 54, 80, 109, 110])
def test_a_link_with_one_character_changed_is_400_and_changes_nothing(
    c: Container, clock: Clock, position: int
) -> None:
    ticket_id, found = followed_up(c, clock)
    token = token_of(found["no"])
    before = snapshot(c, ticket_id)
    replacement = "A" if token[position] != "A" else "B"
    altered = token[:position] + replacement + token[position + 1 :]
    for response in (get(altered), post(altered, b"feedback_text=x")):
        assert response.status_code == 400 and response.mimetype == "text/html"
        assert "not valid" in text(response)
    problem = post(altered, b"", {"Accept": "application/json"})
    assert problem.status_code == 400 and payload(problem)["code"] == "link_invalid"
    assert snapshot(c, ticket_id) == before


def test_a_link_signed_with_another_key_is_400(c: Container, clock: Clock) -> None:
    ticket_id, _ = followed_up(c, clock)
    before = snapshot(c, ticket_id)
    ticket = stored(c, ticket_id)
    forged = answer_links(
        link_settings(build(clock, FEEDBACK_LINK_SECRET="an0ther-K3y-8c1f5e9a2d7b4c6e0f3a9d2b7c").settings),
        ticket,
        2,
        clock.now,
    )
    assert post(token_of(forged["no"])).status_code == 400
    assert snapshot(c, ticket_id) == before


def test_an_expired_link_is_410_and_changes_nothing_and_a_second_earlier_it_works(
    c: Container, clock: Clock
) -> None:
    ticket_id, found = followed_up(c, clock)
    resolved = clock.now - timedelta(seconds=DELAY)
    before = snapshot(c, ticket_id)
    clock.now = resolved + timedelta(seconds=WINDOW)
    for response in (get(token_of(found["no"])), post(token_of(found["no"]), b"feedback_text=late")):
        assert response.status_code == 410 and "expired" in text(response)
    assert payload(post(token_of(found["no"]), b"", JSON_ACCEPT))["code"] == "link_expired"
    assert snapshot(c, ticket_id) == before
    clock.now = resolved + timedelta(seconds=WINDOW - 1)
    assert post(token_of(found["yes"])).status_code == 200


def test_a_link_for_a_rolled_back_resolution_is_410_and_changes_nothing(c: Container, clock: Clock) -> None:
    ticket_id, found = followed_up(c, clock)
    ticket = stored(c, ticket_id)
    assert ticket.resolution is not None
    voided = ticket.resolution.model_copy(update={"outcome": ResolutionOutcome.VOIDED})
    changed, entry = ticket.advance(ActionType.ROLLBACK, "root", clock.now, {"resolution": voided})
    c.tickets.save(changed, [entry])
    before = snapshot(c, ticket_id)
    for response in (get(token_of(found["no"])), post(token_of(found["no"]))):
        assert response.status_code == 410 and "no longer applies" in text(response)
    assert payload(post(token_of(found["yes"]), b"", JSON_ACCEPT))["code"] == "link_void"
    assert snapshot(c, ticket_id) == before


def test_a_link_for_a_resolution_a_later_auto_resolution_replaced_is_410(c: Container, clock: Clock) -> None:
    ticket_id, found = followed_up(c, clock)
    ticket = stored(c, ticket_id)
    assert ticket.resolution is not None
    fresh = ticket.resolution.model_copy(
        update={"outcome": ResolutionOutcome.PENDING, "followup_sent_at": None}
    )
    changed, entry = ticket.advance(ActionType.AUTO_RESOLVE, "agent", clock.now, {"resolution": fresh})
    c.tickets.save(changed, [entry])
    before = snapshot(c, ticket_id)
    response = post(token_of(found["no"]), b"", JSON_ACCEPT)
    assert response.status_code == 410 and payload(response)["code"] == "link_void"
    assert snapshot(c, ticket_id) == before


def test_a_link_bound_to_another_owner_is_410_and_changes_nothing(c: Container, clock: Clock) -> None:
    """A genuine signature over another owner (a ticket whose owner changed since) does not answer."""
    ticket_id, _ = followed_up(c, clock)
    ticket = stored(c, ticket_id)
    other = answer_links(link_settings(c.settings), ticket.model_copy(update={"user": "bob"}), 2, clock.now)
    before = snapshot(c, ticket_id)
    assert payload(post(token_of(other["no"]), b"", JSON_ACCEPT))["code"] == "link_void"
    assert snapshot(c, ticket_id) == before


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"satisfaction_score=7", "application/x-www-form-urlencoded", 400),
        (b"satisfaction_score=five", "application/x-www-form-urlencoded", 400),
        (b"satisfaction_score=1&satisfaction_score=5", "application/x-www-form-urlencoded", 400),
        (b"resolution_confirmed=true", "application/x-www-form-urlencoded", 400),  # the link says it
        (b"feedback_text=" + b"x" * 2001, "application/x-www-form-urlencoded", 400),
        (b"feedback_text=%ED%A0%80", "application/x-www-form-urlencoded", 200),  # a lone surrogate: U+FFFD
        (b"feedback_text=x", "text/plain", 415),
        (b"x" * (64 * 1024 + 1), "application/x-www-form-urlencoded", 413),
    ],
)
def test_a_bad_form_is_refused_with_nothing_changed(
    c: Container, clock: Clock, body: bytes, content_type: str, status: int
) -> None:
    ticket_id, found = followed_up(c, clock)
    before = snapshot(c, ticket_id)
    response = post(token_of(found["no"]), body, {"Content-Type": content_type})
    assert response.status_code == status, text(response)
    assert response.mimetype == "text/html"
    if status == 400:
        assert "<li>" in text(response)  # the page says which field and why
    if status != 200:
        assert snapshot(c, ticket_id) == before
        assert post(token_of(found["no"])).status_code == 200  # the link was not used up


def test_an_answer_may_come_as_json_too(c: Container, clock: Clock) -> None:
    ticket_id, found = followed_up(c, clock)
    response = post(
        token_of(found["yes"]),
        b'{"satisfaction_score": 4, "feedback_text": "ok"}',
        {"Content-Type": "application/json", **JSON_ACCEPT},
    )
    assert response.status_code == 200 and payload(response)["resolution_confirmed"] is True
    assert stored(c, ticket_id).resolution.satisfaction_score == 4  # type: ignore[union-attr]


class SlowReads:
    """The repository with a pause after each read, so that concurrent uses of one link all read
    "unused" on the same version and race to commit."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_with_request(self, ticket_id: int, request_id: str) -> tuple[Ticket | None, RequestRecord | None]:
        found = self.inner.get_with_request(ticket_id, request_id)
        time.sleep(0.01)
        return found  # type: ignore[no-any-return]


def test_concurrent_posts_of_one_link_record_one_answer(c: Container, clock: Clock) -> None:
    ticket_id, found = followed_up(c, clock)
    c.feedback_service.tickets = SlowReads(c.tickets)  # type: ignore[assignment]
    start = threading.Barrier(10)

    def use(i: int) -> int:
        start.wait()
        return post(token_of(found["no"]), f"satisfaction_score={1 + i % 5}".encode()).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(use, range(10)))
    assert sorted(statuses) == [200] + [410] * 9
    assert kinds(c, ticket_id) == ["AUTO_RESOLVE", "FOLLOWUP_SENT", "FEEDBACK_RECEIVED", "REOPEN"]
    staff = [n for n in c.notifications.list(None, 100, None).results if n.kind == "reopened"]
    assert len(staff) == 1


def test_a_link_signed_with_the_previous_key_still_works_after_a_rotation(clock: Clock) -> None:
    old = build(clock, FEEDBACK_LINK_SECRET="0ld-K3y-f9e8d7c6b5a4f3e2d1c0b9a8f7e6")
    use_container(old)
    try:
        ticket_id, found = followed_up(old, clock)
        rotated = build(
            clock,
            FEEDBACK_LINK_SECRET="n3w-K3y-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c",
            FEEDBACK_LINK_SECRET_PREVIOUS="0ld-K3y-f9e8d7c6b5a4f3e2d1c0b9a8f7e6",
        )
        rotated.tickets, rotated.ledger = old.tickets, old.ledger  # the same storage, new settings
        rotated.link_service._tickets = old.tickets  # type: ignore[attr-defined]
        rotated.feedback_service.tickets = old.tickets
        use_container(rotated)
        assert get(token_of(found["no"])).status_code == 200
        dropped = build(clock, FEEDBACK_LINK_SECRET="n3w-K3y-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c")
        use_container(dropped)
        assert get(token_of(found["no"])).status_code == 400  # the old key is no longer accepted
        assert stored(old, ticket_id).status == "resolved"
    finally:
        use_container(None)


# Settings: the key and the public address


def link_refusals(monkeypatch: pytest.MonkeyPatch, **values: str) -> dict[str, str]:
    monkeypatch.delenv("FEEDBACK_LINK_SECRET", raising=False)
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    with pytest.raises(ValidationError) as caught:
        Settings(  # type: ignore[call-arg]
            ENVIRONMENT="production",
            AUTH_JWT_SECRET=LINK_SECRET[::-1],
            AzureWebJobsStorage="UseDevelopmentStorage=true",
            **values,
        )
    from shared.config import problems

    return dict(p.split(": ", 1) for p in problems(caught.value))


GOOD_URL = {"PUBLIC_BASE_URL": "https://help.example.com"}


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("", "not set"),
        ("short-K3y-a8f2", "shorter than 32"),
        (LOCAL_LINK_SECRET, "placeholder"),
        ("abababababababababababababababababababab", "variety"),
        ("k3y" * 12, "variety"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "neighbouring"),
    ],
)
def test_outside_local_a_missing_or_weak_link_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, secret: str, why: str
) -> None:
    refused = link_refusals(monkeypatch, FEEDBACK_LINK_SECRET=secret, **GOOD_URL)
    assert set(refused) == {"FEEDBACK_LINK_SECRET"} and why in refused["FEEDBACK_LINK_SECRET"]
    assert not secret or secret not in str(refused)


def test_outside_local_the_link_secret_must_not_be_the_token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = link_refusals(monkeypatch, FEEDBACK_LINK_SECRET=LINK_SECRET[::-1], **GOOD_URL)
    assert "AUTH_JWT_SECRET" in refused["FEEDBACK_LINK_SECRET"]


def test_outside_local_a_weak_previous_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = link_refusals(
        monkeypatch, FEEDBACK_LINK_SECRET=LINK_SECRET, FEEDBACK_LINK_SECRET_PREVIOUS="old", **GOOD_URL
    )
    assert set(refused) == {"FEEDBACK_LINK_SECRET_PREVIOUS"}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "not set"),
        ("http://help.example.com", "https://"),
        ("help.example.com", "absolute"),
        ("https://help.example.com/?x=1", "absolute"),
        ("https://help.example.com/#top", "absolute"),
        ("https://hëlp.example.com", "ASCII"),
        ("https://help.example.com/" + "a" * 300, "300"),
    ],
)
def test_outside_local_the_public_base_url_is_required_over_https(
    monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    refused = link_refusals(monkeypatch, FEEDBACK_LINK_SECRET=LINK_SECRET, PUBLIC_BASE_URL=url)
    assert set(refused) == {"PUBLIC_BASE_URL"} and why in refused["PUBLIC_BASE_URL"]


def test_locally_the_dev_key_and_the_local_host_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDBACK_LINK_SECRET", raising=False)
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    settings = Settings(ENVIRONMENT="local", AUTH_JWT_SECRET=SECRET)  # type: ignore[call-arg]
    assert settings.feedback_link_secret == LOCAL_LINK_SECRET and "change-me" in LOCAL_LINK_SECRET
    assert settings.public_base_url == LOCAL_BASE_URL == "http://127.0.0.1:7071"
    good = Settings(  # type: ignore[call-arg]
        ENVIRONMENT="production",
        AzureWebJobsStorage="UseDevelopmentStorage=true",
        AUTH_JWT_SECRET=SECRET[::-1],
        FEEDBACK_LINK_SECRET=LINK_SECRET,
        PUBLIC_BASE_URL="https://help.example.com:8443/support/",
    )
    assert good.public_base_url == "https://help.example.com:8443/support"  # links add /api/feedback/...


def test_through_the_app_a_missing_link_secret_outside_local_answers_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH_JWT_SECRET", LINK_SECRET[::-1])
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.delenv("FEEDBACK_LINK_SECRET", raising=False)
    use_container(None)
    try:
        for name, method in (
            ("feedback_link_page", "GET"),
            ("feedback_link_answer", "POST"),
            ("ops_health", "GET"),
        ):
            response = invoke(name, method, route={"token": "x"}, headers={"Accept": "application/json"})
            assert response.status_code == 503, name
            body = payload(response)
            assert body["code"] == "service_misconfigured" and "FEEDBACK_LINK_SECRET" in body["detail"]
    finally:
        use_container(None)


def test_the_text_of_a_posted_form_is_kept_out_of_error_reports() -> None:
    from shared.observability import free_text

    found = free_text(b"satisfaction_score=2&feedback_text=my+VPN+password+is+hunter2%21")
    assert "my VPN password is hunter2!" in found
    assert free_text(b"not a form at all") == () and free_text(b"\xff\xfe=x") == ()


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        (None, False),
        ("*/*", False),
        (BROWSER["Accept"], False),
        ("text/html", False),
        ("application/json", True),
        ("application/problem+json", True),
        ("text/html;q=0.5, application/json", True),
        ("text/html, application/json;q=0.9", False),
        ("application/json;q=0", False),
        ("nonsense;;q=x", False),
    ],
)
def test_a_page_unless_the_client_prefers_json(accept: str | None, json: bool) -> None:
    from functions.http import prefers_json

    assert prefers_json(accept) is json


class FailingSaves:
    """Storage fails on the answer's transaction (after the reads went through)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner, self.failures = inner, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            from azure.core.exceptions import ServiceRequestError

            raise ServiceRequestError("connection refused")
        self.inner.save(*args, **kwargs)


def test_a_storage_outage_while_answering_is_503_changes_nothing_and_leaves_the_link_usable(
    c: Container, clock: Clock
) -> None:
    ticket_id, found = followed_up(c, clock)
    before = snapshot(c, ticket_id)
    c.feedback_service.tickets = FailingSaves(c.tickets, failures=1)  # type: ignore[assignment]
    response = post(token_of(found["no"]), b"feedback_text=broken")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert snapshot(c, ticket_id) == before
    assert post(token_of(found["no"]), b"feedback_text=broken").status_code == 200
    assert stored(c, ticket_id).status == "escalated"
