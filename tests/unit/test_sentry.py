"""Real Sentry events, sent to a local capture server: tags, user, what never leaves, and
what a Sentry outage costs a request."""

from __future__ import annotations

import json
import logging
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
import httpx
import pytest
import sentry_sdk

from shared import observability
from shared.config import Settings
from shared.container import Container, use_container
from shared.domain.analysis import Analysis
from shared.domain.models import Category, Principal, Status, Ticket, TicketCreate
from shared.errors import AgentUnavailable
from shared.storage.memory import InMemoryTicketRepository
from tests.conftest import SECRET, token
from tests.helpers import SentryCapture, serving
from tests.unit.http_client import REGISTERED, Context, invoke, payload

ACCOUNT_KEY = "Zm9yZ2VkLWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWF2ZQ=="
CONNECTION = (
    "DefaultEndpointsProtocol=https;AccountName=resolvemeqprod;"
    f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)
AGENT_KEY = "agent-api-key-9c1e77d0a4b2"
EMAIL = "jane.doe@contoso.example"
DESCRIPTION = f"My payroll login stopped working after the trip to Lisbon; call me, {EMAIL}"
ISSUE = "Payroll portal rejects my password"
CLIENT_IP = "203.0.113.77"
AAD_TOKEN = "aad-id-token-value-5b8f0e2c9d"
CLIENT_HEADERS = {
    "X-Forwarded-For": f"{CLIENT_IP}, 10.0.0.4",
    "Client-Ip": f"{CLIENT_IP}:51234",
    "X-Ms-Token-Aad-Id-Token": AAD_TOKEN,
    "X-Ms-Client-Principal-Name": EMAIL,
    "Cookie": f"session={AAD_TOKEN}",
}
NEVER_SENT = (ACCOUNT_KEY, AGENT_KEY, SECRET, EMAIL, CLIENT_IP, AAD_TOKEN, "Lisbon", "payroll", "Payroll")


@pytest.fixture(autouse=True)
def sentry_off_afterwards(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    gate = observability.FlushGate(observability.FLUSH_TIMEOUT_SECONDS, observability.FLUSH_PAUSE_SECONDS)
    monkeypatch.setattr(observability, "_flush_gate", gate)
    yield
    use_container(None)
    sentry_sdk.init()  # no DSN: switch the client off for the tests that follow
    observability._sentry_on = False


@pytest.fixture
def capture() -> Iterator[SentryCapture]:
    with serving(SentryCapture()) as server:
        yield server


# Sentry sends the source lines around each frame: this raise stays well away from the secrets above.
class BrokenRepository(InMemoryTicketRepository):
    def get(self, ticket_id: int) -> None:
        raise RuntimeError("storage exploded")


def start_sentry(dsn: str, **values: str) -> Settings:
    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET,
        SENTRY_DSN=dsn,
        ENVIRONMENT="local",
        AzureWebJobsStorage=CONNECTION,
        AGENT_API_KEY=AGENT_KEY,
        **values,
    )
    assert observability.init_sentry(settings)
    return settings


def sentry_items(server: SentryCapture) -> list[dict[str, Any]]:
    sentry_sdk.flush(timeout=5)
    items = []
    for envelope in server.envelopes:
        for line in envelope.splitlines():
            if line.startswith(b"{"):
                items.append(json.loads(line))
    return items


def events(server: SentryCapture) -> list[dict[str, Any]]:
    return [item for item in sentry_items(server) if "event_id" in item and "level" in item]


def raw(server: SentryCapture) -> str:
    return b"".join(server.envelopes).decode()


def frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        frame
        for value in event.get("exception", {}).get("values", [])
        for frame in (value.get("stacktrace") or {}).get("frames", [])
    ]


def assert_nothing_private(server: SentryCapture) -> None:
    text = raw(server)
    leaked = [secret for secret in NEVER_SENT if secret in text]
    assert not leaked, f"{leaked} reached Sentry"


# --- the event and its request data --------------------------------------------------------------


def test_an_unhandled_error_reaches_sentry_tagged_with_allowlisted_request_data(
    capture: SentryCapture,
) -> None:
    settings = start_sentry(capture.dsn)
    options = sentry_sdk.get_client().options
    assert not sentry_sdk.get_client().should_send_default_pii() and not options["include_local_variables"]
    use_container(Container.in_memory(settings, tickets=BrokenRepository()))
    bearer_token = token("alice")
    response = invoke(
        "tickets_get",
        headers={"Authorization": f"Bearer {bearer_token}", **CLIENT_HEADERS},
        params={"email": EMAIL},
        route={"id": "7"},
    )
    assert response.status_code == 500 and payload(response)["code"] == "internal_error"
    [event] = [e for e in events(capture) if "exception" in e]
    assert event["tags"]["function"] == "tickets_get"
    assert event["tags"]["invocation_id"] == "test-invocation"
    assert event["tags"]["route"] == "/api/tickets/{id:int}"
    assert event["user"] == {"id": "alice"}
    assert event["environment"] == "local"
    assert event["request"] == {"method": "GET", "url": "/api/tickets/{id:int}"}
    assert all("vars" not in frame for frame in frames(event)) and frames(event)
    assert bearer_token not in raw(capture)
    assert_nothing_private(capture)
    assert "storage exploded" in raw(capture)  # the event itself was kept, only secrets removed


def test_a_user_id_that_is_an_email_address_goes_as_a_stable_pseudonym(capture: SentryCapture) -> None:
    settings = start_sentry(capture.dsn)
    use_container(Container.in_memory(settings, tickets=BrokenRepository()))
    for _ in range(2):
        invoke("tickets_get", headers={"Authorization": f"Bearer {token(EMAIL)}"}, route={"id": "7"})
    ids = {e["user"]["id"] for e in events(capture) if "exception" in e}
    assert len(ids) == 1 and next(iter(ids)).startswith("user-")
    assert_nothing_private(capture)


def owned_ticket() -> Ticket:
    now = "2026-01-01T00:00:00Z"
    return Ticket.model_validate(
        {
            "id": 7,
            "issue_type": ISSUE,
            "description": DESCRIPTION,
            "category": Category.ACCOUNT,
            "tags": ["hr"],
            "status": Status.NEW,
            "user": "alice",
            "created_at": now,
            "updated_at": now,
        }
    )


class LeakyRepository(InMemoryTicketRepository):
    """Fails a read the way careless code would, with the Settings and the ticket in its locals."""

    def __init__(self, settings: Settings, fail: Callable[[Settings, Ticket, str], None]) -> None:
        super().__init__()
        self.settings, self.fail = settings, fail

    def get(self, ticket_id: int) -> Ticket | None:
        settings = self.settings
        ticket = owned_ticket()
        connection = settings.storage_connection
        self.fail(settings, ticket, connection)
        return ticket


def fail_plainly(settings: Settings, ticket: Ticket, connection: str) -> None:
    raise RuntimeError("storage exploded")


def fail_with_everything_in_the_message(settings: Settings, ticket: Ticket, connection: str) -> None:
    raise RuntimeError(f"could not read {ticket!r} over {connection} for {settings.agent_api_key}")


def fail_with_the_ticket_as_json(settings: Settings, ticket: Ticket, connection: str) -> None:
    raise RuntimeError(f"bad row {ticket.model_dump_json()} (SAS ?sv=2024-05-04&se=2031&sp=r&sig=abc%3D)")


def fail_validating(settings: Settings, ticket: Ticket, connection: str) -> None:
    Ticket.model_validate([ticket.model_dump()])  # pydantic quotes the input: input_value=[{...}]


def fail_after_logging_the_ticket(settings: Settings, ticket: Ticket, connection: str) -> None:
    logging.getLogger("resolvemeq.test").error("about to fail on %s", ticket, extra={"ticket": ticket})
    raise RuntimeError(f"read failed: {ticket}")


@pytest.mark.parametrize(
    "fail",
    [
        fail_plainly,
        fail_with_everything_in_the_message,
        fail_with_the_ticket_as_json,
        fail_validating,
        fail_after_logging_the_ticket,
    ],
)
def test_no_account_key_token_ticket_text_email_or_client_ip_reaches_sentry(
    capture: SentryCapture, fail: Callable[[Settings, Ticket, str], None]
) -> None:
    settings = start_sentry(capture.dsn)
    use_container(Container.in_memory(settings, tickets=LeakyRepository(settings, fail)))
    bearer_token = token("alice")
    response = invoke(
        "tickets_get",
        headers={"Authorization": f"Bearer {bearer_token}", **CLIENT_HEADERS},
        route={"id": "7"},
    )
    assert response.status_code == 500
    found = [e for e in events(capture) if "exception" in e]
    assert found, "the event must be kept, only scrubbed"
    for event in found:
        assert all("vars" not in frame for frame in frames(event))
        assert set(event["request"]) == {"method", "url"}
    assert bearer_token not in raw(capture)
    assert_nothing_private(capture)


def test_an_event_the_scrubber_fails_on_is_sent_bare_not_lost(
    capture: SentryCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: observability.Scrubber, event: Any) -> Any:
        raise RecursionError("too deep")

    monkeypatch.setattr(observability.Scrubber, "event", broken)
    settings = start_sentry(capture.dsn)
    fail = fail_with_everything_in_the_message
    use_container(Container.in_memory(settings, tickets=LeakyRepository(settings, fail)))
    invoke(
        "tickets_get",
        headers={"Authorization": f"Bearer {token('alice')}", **CLIENT_HEADERS},
        route={"id": "7"},
    )
    found = [e for e in events(capture) if e.get("tags", {}).get("scrubber") == "failed"]
    assert found and all(e["level"] == "error" for e in found)
    assert_nothing_private(capture)


class VerbatimFailure(InMemoryTicketRepository):
    def add(self, ticket: Ticket) -> None:
        raise RuntimeError(ticket.description)  # the text alone: no key or quote gives it away


def test_free_text_a_request_sent_is_kept_out_even_when_an_exception_quotes_it_verbatim(
    capture: SentryCapture,
) -> None:
    settings = start_sentry(capture.dsn)
    use_container(Container.in_memory(settings, tickets=VerbatimFailure()))
    body = {"issue_type": ISSUE, "description": DESCRIPTION.replace(EMAIL, "the desk")}
    response = invoke(
        "tickets_create", "POST", json_body=body, headers={"Authorization": f"Bearer {token('bob')}"}
    )
    assert response.status_code == 500
    assert [e for e in events(capture) if "exception" in e]
    assert_nothing_private(capture)


# --- the queue path ------------------------------------------------------------------------------


def queue_call(name: str, body: dict[str, Any]) -> None:
    [fn] = [f.get_user_function() for f in REGISTERED if f.get_function_name() == name]
    fn(func.QueueMessage(id="m1", body=json.dumps(body).encode()), Context())


def test_autonomous_actions_send_confidence_metrics_and_failures_as_tagged_errors(
    capture: SentryCapture,
) -> None:
    settings = start_sentry(capture.dsn)
    container = Container.in_memory(settings)
    use_container(container)
    alice = Principal(sub="alice")
    reset = TicketCreate(issue_type="Password reset", description="I forgot my password, please reset it.")
    ticket = container.ticket_service.create(alice, reset)
    queue_call("agent_run", {"ticket_id": ticket.id, "request_id": "r1", "requested_by": "alice"})
    with pytest.raises(ValueError):
        queue_call("agent_run", {"ticket_id": "not-a-number"})
    items = sentry_items(capture)
    metrics = [m for item in items for m in item.get("items", []) if m.get("name") == "agent.confidence"]
    assert metrics, items
    attributes = {k: v["value"] for k, v in metrics[0]["attributes"].items()}
    assert attributes["component"] == "autonomous_agent" and attributes["action_type"] == "AUTO_RESOLVE"
    assert attributes["confidence_level"] == "high" and metrics[0]["value"] >= 0.8
    errors = [i for i in items if "exception" in i]
    assert len(errors) == 1 and errors[0]["tags"]["function"] == "agent_run"
    assert errors[0]["tags"]["component"] == "autonomous_agent" and errors[0]["tags"]["outcome"] == "failed"


ROLLBACK_TAGS = {"event": "rollback", "action_type": "AUTO_RESOLVE", "component": "autonomous_agent"}


@pytest.mark.parametrize("within", ["invocation", "no-scope"])
def test_a_rollback_is_one_warning_event_tagged_with_the_admin_pseudonymised(
    capture: SentryCapture, within: str
) -> None:
    start_sentry(capture.dsn)
    # Tests that drive the worker outside any invocation leave their action tags on the process's
    # isolation scope (a host always runs it inside one): start from a clean one.
    sentry_sdk.get_isolation_scope().clear()
    body = json.dumps({"reason": DESCRIPTION}).encode()  # the admin's reason: free text
    request = {
        "method": "POST",
        "url": "/api/tickets/actions/{action_id}/rollback/",
        "headers": CLIENT_HEADERS,
    }
    if within == "invocation":
        with observability.invocation("inv-rb", "tickets_rollback", request, body):
            logging.getLogger("resolvemeq.test").warning("rolling back for %s: %s", EMAIL, DESCRIPTION)
            observability.SentryTelemetry().rollback(7, "AUTO_RESOLVE", EMAIL)
    else:
        observability.SentryTelemetry().rollback(7, "AUTO_RESOLVE", EMAIL)
    [event] = [e for e in events(capture) if e.get("tags", {}).get("event") == "rollback"]
    assert len(events(capture)) == 1
    assert event["level"] == "warning" and event["message"] == "AUTO_RESOLVE on ticket 7 rolled back"
    scope_tags = {"function", "invocation_id", "route"} if within == "invocation" else set()
    assert {k: v for k, v in event["tags"].items() if k not in scope_tags} == ROLLBACK_TAGS
    assert event["user"] == {"id": observability.sentry_user_id(EMAIL)} and event["user"]["id"].startswith(
        "user-"
    )
    assert event["contexts"]["rollback"] == {"ticket_id": 7}
    assert set(event.get("request", {})) <= {"method", "url"}
    if within == "invocation":  # the breadcrumb quoting the admin's reason rode along, scrubbed
        [crumb] = [c for c in event["breadcrumbs"]["values"] if c.get("category") == "resolvemeq.test"]
        assert "[Filtered]" in crumb["message"] or "[email]" in crumb["message"]
    assert_nothing_private(capture)


class CrashingAnalyser:
    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        raise RuntimeError(f"model crashed on {ticket}")


class DownAnalyser:
    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        raise AgentUnavailable(f"agent down while reading: {ticket['description']}")


class ExplodingTelemetry:
    def action(self, *_: object) -> None:
        raise RuntimeError("telemetry exploded")


@pytest.mark.parametrize(
    "parts",
    [{"analyser": CrashingAnalyser()}, {"analyser": DownAnalyser(), "telemetry": ExplodingTelemetry()}],
    ids=["crash-quoting-the-ticket", "warning-quoting-the-description-then-a-crash"],
)
def test_a_failed_message_is_a_tagged_error_without_its_body_or_ticket_text(
    capture: SentryCapture, parts: dict[str, Any]
) -> None:
    settings = start_sentry(capture.dsn)
    container = Container.in_memory(settings, **parts)
    use_container(container)
    ticket = container.ticket_service.create(
        Principal(sub="alice"), TicketCreate(issue_type=ISSUE, description=DESCRIPTION)
    )
    message = {
        "ticket_id": ticket.id,
        "request_id": "r-leak",
        "requested_by": "alice",
        "ticket": ticket.model_dump(mode="json"),
        "ticket_version": 1,
        "attempt": 3,  # the last try: the outage is not retried again, the ticket is deferred
    }
    with pytest.raises(RuntimeError):
        queue_call("agent_run", message)
    [error] = [e for e in events(capture) if "exception" in e]
    assert error["tags"]["component"] == "autonomous_agent" and error["tags"]["outcome"] == "failed"
    assert error["tags"]["function"] == "agent_run"
    assert all("vars" not in frame for frame in frames(error))
    if "telemetry" in parts:  # the warning's breadcrumb rode along, scrubbed
        crumbs = [c for c in error["breadcrumbs"]["values"] if "agent down while reading" in str(c)]
        assert crumbs and "[Filtered]" in str(crumbs)
    assert_nothing_private(capture)


# --- breadcrumbs -------------------------------------------------------------------------------------


def test_breadcrumbs_of_outgoing_requests_lose_their_query_string(capture: SentryCapture) -> None:
    start_sentry(capture.dsn)
    url = f"http://127.0.0.1:{capture.server_address[1]}/analyse"
    with observability.invocation("inv-1", "agent_run"):
        httpx.get(f"{url}?code={AGENT_KEY}&sig=abc")
        logging.getLogger("resolvemeq.test").warning("called %s?code=%s for %s", url, AGENT_KEY, EMAIL)
        sentry_sdk.capture_message("after the call")
    [event] = [e for e in events(capture) if e.get("message") == "after the call"]
    crumbs = event["breadcrumbs"]["values"]
    http = [c["data"] for c in crumbs if c.get("type") == "http" and c["data"]["url"] == url]
    assert http and all(d["http.query"] == "[Filtered]" for d in http)
    [log] = [c for c in crumbs if c.get("category") == "resolvemeq.test"]
    assert "/analyse?[Filtered]" in log["message"]
    assert_nothing_private(capture)


# --- the scrubber ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        CONNECTION,
        f"connect failed: AccountKey={ACCOUNT_KEY}",
        "GET https://acct.table.core.windows.net/Tickets?sv=2024-05-04&ss=t&sp=rwd&se=2031-01-01&sig=AbC%2Fk%3D",
        "token: sv=2024-05-04&ss=t&srt=o&sp=r&se=2031-01-01&sig=AbCk",
        "se=2031-01-01T00:00:00Z&sp=rwd",
        "Authorization: Bearer opaque.token-value_123",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl in a message",
        f"contact {EMAIL}",
        f"the secret is {SECRET}",
        f"key {AGENT_KEY} rejected",
        f"Ticket(id=7, description='{DESCRIPTION}')",
        f'{{"feedback_text": "{DESCRIPTION}", "id": 7}}',
        f"1 validation error [type=string_too_long, input_value='{DESCRIPTION}', input_type=str]",
    ],
)
def test_the_scrubber_removes_credentials_and_free_text_from_any_string(text: str) -> None:
    settings = Settings(AUTH_JWT_SECRET=SECRET, AzureWebJobsStorage=CONNECTION, AGENT_API_KEY=AGENT_KEY)  # type: ignore[call-arg]
    scrubbed = observability.Scrubber(observability.configured_secrets(settings)).text(text)
    for secret in (*NEVER_SENT, "AbC%2F", "AbCk", "eyJ", "opaque.token", "2031-01-01"):
        assert secret not in scrubbed, scrubbed
    assert "[Filtered]" in scrubbed or "[email]" in scrubbed


def test_the_scrubber_keeps_the_event_and_drops_free_text_keys_and_request_extras() -> None:
    scrubber = observability.Scrubber({SECRET})
    event = {
        "message": "kept",
        "request": {"method": "POST", "url": "/api/tickets", "headers": {"X-Forwarded-For": CLIENT_IP}},
        "user": {"id": "alice", "email": EMAIL, "ip_address": CLIENT_IP},
        "extra": {"description": DESCRIPTION, "Feedback-Text": "awful", "nested": [{"reasoning": "x"}]},
        "contexts": {"agent": {"x-ms-token-aad-access-token": AAD_TOKEN, "status": 503}},
        "tags": {"component": "agent_api"},
        "exception": {"values": [{"stacktrace": {"frames": [{"function": "f", "vars": {"s": SECRET}}]}}]},
    }
    scrubbed = scrubber.event(event)
    assert scrubbed["message"] == "kept" and scrubbed["tags"] == {"component": "agent_api"}
    assert scrubbed["request"] == {"method": "POST", "url": "/api/tickets"}
    assert scrubbed["user"] == {"id": "alice"}
    assert (
        scrubbed["extra"]["description"] == "[Filtered]"
        and scrubbed["extra"]["Feedback-Text"] == "[Filtered]"
    )
    assert scrubbed["contexts"]["agent"]["status"] == 503
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"] == [{"function": "f"}]
    text = json.dumps(scrubbed)
    assert all(secret not in text for secret in (SECRET, EMAIL, CLIENT_IP, AAD_TOKEN, "Lisbon", "awful"))


# --- flushing is bounded per process -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_one_flush_runs_at_a_time_the_others_skip() -> None:
    gate = observability.FlushGate(timeout=1.0, pause=30.0)
    release = threading.Event()
    started = threading.Event()

    def slow_flush(timeout: float) -> None:
        started.set()
        release.wait(5)

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(gate.flush, slow_flush)
        assert started.wait(5)
        others = [pool.submit(gate.flush, slow_flush) for _ in range(7)]
        skipped = [f.result(timeout=5) for f in others]
        release.set()
        assert first.result(timeout=5) is True
    assert skipped == [False] * 7


def test_a_flush_that_times_out_pauses_flushing_for_a_while() -> None:
    clock = Clock()
    gate = observability.FlushGate(timeout=1.0, pause=30.0, clock=clock)
    calls: list[float] = []

    def flush_timing_out(timeout: float) -> None:
        calls.append(timeout)
        clock.now += timeout

    assert gate.flush(flush_timing_out)
    assert not gate.flush(flush_timing_out)
    clock.now += 29.9
    assert not gate.flush(flush_timing_out)
    clock.now += 0.2
    assert gate.flush(lambda timeout: None)  # Sentry is back: a quick flush keeps flushing on
    assert gate.flush(lambda timeout: None)
    assert calls == [1.0]


def silent_socket() -> socket.socket:
    """Accepts connections (the kernel's backlog does) but never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    return server


def refusing_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def concurrent_latencies(count: int = 20) -> list[float]:
    headers = {"Authorization": f"Bearer {token('alice')}"}
    barrier = threading.Barrier(count)

    def one() -> float:
        barrier.wait()
        started = time.monotonic()
        response = invoke("tickets_get", headers=headers, route={"id": "7"})
        assert response.status_code == 500  # an error: an event to send on every request
        return time.monotonic() - started

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: one(), range(count)))


@pytest.mark.parametrize("sentry", ["never-answers", "refuses"])
def test_twenty_concurrent_requests_are_not_slowed_by_an_unreachable_sentry(sentry: str) -> None:
    settings = Settings(AUTH_JWT_SECRET=SECRET)  # type: ignore[call-arg]
    use_container(Container.in_memory(settings, tickets=BrokenRepository()))
    off = concurrent_latencies()

    silent = silent_socket()
    try:
        port = silent.getsockname()[1] if sentry == "never-answers" else refusing_port()
        start_sentry(f"http://public@127.0.0.1:{port}/1")
        use_container(Container.in_memory(settings, tickets=BrokenRepository()))
        down = concurrent_latencies()
        again = concurrent_latencies()  # flushing is paused now: no request waits at all
    finally:
        silent.close()
    print(
        f"\nSentry {sentry}: max {max(down):.3f} s then {max(again):.3f} s "
        f"(median {statistics.median(down):.3f} s); Sentry off: max {max(off):.3f} s"
    )
    assert max(down) <= max(off) + 1.5
    assert max(again) <= max(off) + 1.5


def test_the_transport_gives_up_on_a_silent_sentry_within_its_short_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert observability.ShortTimeoutTransport.TIMEOUT <= 5  # the SDK's own is 30 s
    monkeypatch.setattr(observability.ShortTimeoutTransport, "TIMEOUT", 1)
    silent = silent_socket()
    try:
        start_sentry(f"http://public@127.0.0.1:{silent.getsockname()[1]}/1")
        sentry_sdk.capture_message("into the void")
        started = time.monotonic()
        sentry_sdk.flush(timeout=20)  # returns once the transport gave up on its envelopes
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    # Two envelopes (the event and a client report), one second each, no retries.
    assert elapsed < 4


@pytest.mark.timeout(10)  # quadratic patterns took minutes on these; linear ones take milliseconds
@pytest.mark.parametrize(
    "text",
    [
        "a" * 50_000 + "=" + "b" * 50_000,
        "a=b" * 30_000,
        "a" * 50_000 + "@" + "b" * 50_000,
        "a." * 50_000,
        "http://" + "a" * 100_000,
        "eyJ" + "a" * 100_000,
        "description='" * 10_000,
    ],
    ids=["key-value", "pairs", "email", "dots", "url", "jwt", "quoted"],
)
def test_scrubbing_a_long_hostile_string_is_linear_and_cut_to_a_bound(text: str) -> None:
    scrubbed = observability.Scrubber({SECRET}).text(text)
    assert len(scrubbed) <= observability.MAX_TEXT_LENGTH + len("...[truncated]")
