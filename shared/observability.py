"""Structured logging with the invocation id, and Sentry (only when SENTRY_DSN is set)."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import sentry_sdk
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.transport import HttpTransport

from shared.config import Settings

invocation_id: contextvars.ContextVar[str] = contextvars.ContextVar("invocation_id", default="-")
# The free text (ticket descriptions, feedback...) of the body this invocation received:
# replaced wherever it shows up in an event, even inside an exception message.
_free_text: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("free_text", default=())
FILTERED = "[Filtered]"
MAX_TEXT_LENGTH = 16 * 1024  # per string sent to Sentry (the SDK no longer cuts them)
MIN_SECRET_LENGTH = 8  # shorter configured values would blot out ordinary words
FLUSH_TIMEOUT_SECONDS = 1.0
FLUSH_PAUSE_SECONDS = 30.0
TRANSPORT_TIMEOUT_SECONDS = 5
TRANSPORT_QUEUE_SIZE = 100
# httpx logs every request URL at INFO, query string (and any key in it) included.
QUIET_LOGGERS = ("azure", "httpx", "httpcore", "urllib3")
_sentry_on = False


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, invocation id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "invocation_id": getattr(record, "invocation_id", invocation_id.get()),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class InvocationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.invocation_id = invocation_id.get()
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Tag every record with the invocation id; add a JSON handler only where none exists
    (the Functions worker brings its own)."""
    root = logging.getLogger()
    if not root.handlers:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, InvocationFilter) for f in handler.filters):
            handler.addFilter(InvocationFilter())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def init_sentry(settings: Settings) -> bool:
    """Initialise Sentry once per worker when a DSN is set; never raises."""
    global _sentry_on
    if _sentry_on or not settings.sentry_dsn:
        return _sentry_on
    scrubber = Scrubber(configured_secrets(settings))

    def before_send(event: Any, _hint: Any) -> Any:
        try:
            return scrubber.event(event)
        except Exception:  # the SDK would drop the event: send a bare one instead
            return scrubber.bare(event)

    def before_breadcrumb(crumb: Any, _hint: Any) -> Any:
        return scrubber.value(crumb)

    def before_send_record(record: Any, _hint: Any) -> Any:  # a log's body is its message: keep it
        scrubbed = scrubber.value(record)
        if isinstance(record, dict) and isinstance(record.get("body"), str):
            scrubbed["body"] = scrubber.text(record["body"])
        return scrubbed

    try:
        sentry_sdk.init(
            dsn=settings.sentry_dsn,
            environment=settings.environment,
            release=settings.app_version,
            traces_sample_rate=settings.sentry_traces_sample_rate,
            # Frames' locals hold the Settings (connection string, secrets) and tickets.
            include_local_variables=False,
            # send_default_pii is left unset (= off); data_collection would switch off the
            # event_scrubber below, so it is left unset too.
            max_request_body_size="never",
            event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *DROPPED_KEYS], recursive=True),
            before_send=before_send,
            before_send_transaction=before_send,
            before_breadcrumb=before_breadcrumb,
            before_send_log=before_send_record,
            before_send_metric=before_send_record,
            transport=ShortTimeoutTransport,
            transport_queue_size=TRANSPORT_QUEUE_SIZE,
            shutdown_timeout=FLUSH_TIMEOUT_SECONDS,
            default_integrations=True,
        )
        _sentry_on = True
    except Exception:  # a bad DSN must not take the app down
        logging.getLogger(__name__).exception("Sentry could not be initialised")
    return _sentry_on


class ShortTimeoutTransport(HttpTransport):
    """The SDK's HTTP transport with a short total timeout per envelope (the SDK's is 30 s)
    and no retries (urllib3 retries a silent server's timeout): during a Sentry outage the
    background worker moves on, and its bounded queue drops what it cannot send."""

    TIMEOUT = TRANSPORT_TIMEOUT_SECONDS

    def _get_pool_options(self) -> dict[str, Any]:
        options = super()._get_pool_options()
        options["retries"] = False
        return options


def configured_secrets(settings: Settings) -> set[str]:
    """The literal values an event must never carry: secrets, keys, the connection string."""
    values = {settings.auth_jwt_secret, settings.agent_api_key, settings.notify_webhook_url}
    values |= {settings.feedback_link_secret, settings.feedback_link_secret_previous}
    values.add(settings.azure_openai_api_key)
    connection = getattr(settings, "storage_connection", "") or ""
    values.add(connection)
    for part in connection.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() in {"accountkey", "sharedaccesssignature", "sharedaccesskey"}:
            values.add(value.strip())
    query = urlsplit(settings.agent_api_url).query if settings.agent_api_url else ""
    values.add(query)
    values.update(v for _, v in parse_qsl(query))
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


# What people write: the values under these keys of an invocation's body are replaced wherever
# they appear in an event.
FREE_TEXT_KEYS = frozenset(
    {
        "description",
        "issue_type",
        "feedback",
        "feedback_text",
        "reasoning",
        "agent_reasoning",
        "reason",
        "reopened_reason",
        "rollback_reason",
        "comment",
    }
)
# Keys whose values are free text people write (or an agent echoes), ticket data, raw request
# parts or credentials: replaced whatever they hold ("reason" stays: deferral reasons are
# codes). Compared lower-case with "-" as "_".
DROPPED_KEYS = (FREE_TEXT_KEYS - {"reason"}) | frozenset(
    {
        "comments",
        "questions",
        "steps",
        "ticket",
        "snapshot",
        "input",
        "input_value",
        "body",
        "cookies",
        "headers",
        "env",
        "query_string",
        "http.query",
        "http.fragment",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "x_api_key",
        "x_functions_key",
        "api_key",
        "jwt",
        "secret",
        "password",
        "token",
        "access_token",
        "connection_string",
        "storage_connection",
        "auth_jwt_secret",
        "agent_api_key",
        "azure_openai_api_key",
        "email",
        "e_mail",
        "ip_address",
        "client_ip",
        "remote_addr",
        "x_forwarded_for",
        "x_real_ip",
        "x_client_ip",
        "x_original_for",
    }
)
DROPPED_KEY_PREFIXES = ("x_ms_token_", "x_ms_client_principal", "x_arr_", "x_forwarded_")
REQUEST_FIELDS = ("method", "url")  # the url is the route template, never the raw URL
USER_FIELDS = ("id",)

# Every pattern is anchored on a literal or bounded, so scrubbing stays linear in the text
# (an event's strings can be long, and before_send runs on the request's thread).
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)*")
_TOKEN_SPLIT = re.compile(r"([\s'\"<>]+)")
_SAS_KEYS = frozenset({"sig", "se", "sp", "sv", "st", "spr", "srt", "ss", "sr", "si", "skoid", "sktid"})
_KEY_VALUE = re.compile(
    r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig|code|api[_-]?key|access[_-]?token"
    r"|token|password|pwd|secret|client[_-]?secret)=([^;&\s'\"]+)"
)
# A model's repr or a JSON document quoted inside a message: `description='...'`, `"reasoning": "..."`.
_QUOTED_FREE_TEXT = re.compile(
    r"(?i)(['\"]?\b(?:description|issue_type|feedback_text|feedback|reasoning|agent_reasoning|reopened_reason"
    r"|rollback_reason)['\"]?\s*[:=]\s*)('(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?)"
)
# pydantic quotes the rejected input: `[type=..., input_value='<ticket text>', input_type=str]`.
_INPUT_VALUE = re.compile(r"input_value=[^\n]*")


def _input_value(match: re.Match[str]) -> str:
    tail = match.group(0).rfind(", input_type=")
    return "input_value=" + FILTERED + (match.group(0)[tail:] if tail >= 0 else "")


def _query(token: str) -> str:
    """A URL without its query string; a bare SAS token (`sv=…&se=…&sig=…`) as a whole."""
    if "://" in token and "?" in token:
        return token.split("?", 1)[0] + "?" + FILTERED
    if "&" in token and "=" in token:
        keys = {pair.split("=", 1)[0].lstrip("?").lower() for pair in token.split("&")}
        if keys & _SAS_KEYS:
            return FILTERED
    return token


class Scrubber:
    """Removes secrets, credentials, free ticket text, e-mail addresses and client data from
    anything bound for Sentry, wherever it sits, and keeps the rest of the event."""

    def __init__(self, secrets: set[str]) -> None:
        self._secrets = sorted(secrets, key=len, reverse=True)

    def event(self, event: Any) -> Any:
        if not isinstance(event, dict):
            return event
        scrubbed = self.value(event)
        request = event.get("request")
        if isinstance(request, Mapping):
            scrubbed["request"] = {k: self.text(str(request[k])) for k in REQUEST_FIELDS if k in request}
        user = scrubbed.get("user")
        if isinstance(user, Mapping):
            scrubbed["user"] = {k: user[k] for k in USER_FIELDS if k in user}
        return scrubbed

    @staticmethod
    def bare(event: Any) -> Any:
        """What is safe to send of an event the scrubber could not handle."""
        kept = ("event_id", "timestamp", "level", "platform", "environment", "release", "server_name")
        bare = {k: event[k] for k in kept if isinstance(event, dict) and isinstance(event.get(k), str)}
        return {
            **bare,
            "message": "An event could not be scrubbed; it was reduced to this.",
            "tags": {"scrubber": "failed"},
        }

    def value(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                k: FILTERED if self._dropped(k) else self.value(v) for k, v in value.items() if k != "vars"
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def text(self, text: str) -> str:
        if len(text) > MAX_TEXT_LENGTH:
            text = text[:MAX_TEXT_LENGTH] + "...[truncated]"
        for secret in (*_free_text.get(), *self._secrets):
            if secret in text:
                text = text.replace(secret, FILTERED)
        text = _INPUT_VALUE.sub(_input_value, text)
        text = _QUOTED_FREE_TEXT.sub(lambda m: m.group(1) + "'" + FILTERED + "'", text)
        text = "".join(_query(token) for token in _TOKEN_SPLIT.split(text))
        text = _KEY_VALUE.sub(lambda m: m.group(1) + "=" + FILTERED, text)
        text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + FILTERED, text)
        text = _JWT.sub(FILTERED, text)
        return _EMAIL.sub("[email]", text)

    @staticmethod
    def _dropped(key: Any) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().replace("-", "_")
        return name in DROPPED_KEYS or name.startswith(DROPPED_KEY_PREFIXES)


class FlushGate:
    """Bounds the time invocations spend flushing Sentry, per process: at most one flush is in
    flight (the others skip it; their events stay queued for the background worker), and a flush
    that runs out its time pauses flushing for a while. So a Sentry outage costs one request at
    most `timeout` now and then, instead of every request waiting its turn on the SDK's lock."""

    def __init__(self, timeout: float, pause: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout, self.pause, self._clock = timeout, pause, clock
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def flush(self, flush: Callable[[float], object]) -> bool:
        """Run `flush(timeout)` unless another one runs or flushing is paused; True if it ran."""
        if self._clock() < self._paused_until or not self._lock.acquire(blocking=False):
            return False
        try:
            started = self._clock()
            flush(self.timeout)
            if self._clock() - started >= 0.9 * self.timeout:  # it timed out: Sentry is slow or down
                self._paused_until = self._clock() + self.pause
        finally:
            self._lock.release()
        return True


_flush_gate = FlushGate(FLUSH_TIMEOUT_SECONDS, FLUSH_PAUSE_SECONDS)


def flush() -> None:
    """Send what this invocation captured, within the per-process bound; never raises."""
    try:
        _flush_gate.flush(lambda timeout: sentry_sdk.flush(timeout=timeout))
    except Exception:  # a Sentry problem must never fail an invocation
        logging.getLogger(__name__).debug("Sentry flush failed", exc_info=True)


MIN_FREE_TEXT_LENGTH = 6
MAX_PAYLOAD_BYTES = 1024 * 1024


def free_text(payload: bytes | None) -> tuple[str, ...]:
    """The values (and their lines) under free-text keys anywhere in a JSON payload, or an HTML
    form's (one-click answers post one), longest first; nothing for any other payload."""
    if not payload or len(payload) > MAX_PAYLOAD_BYTES:
        return ()
    try:
        document = json.loads(payload)
    except ValueError:
        try:
            document = dict(parse_qsl(payload.decode(), keep_blank_values=True, strict_parsing=True))
        except ValueError:  # UnicodeDecodeError included
            return ()
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k).lower())
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in FREE_TEXT_KEYS:
            found.update(line.strip() for line in [value, *value.splitlines()])

    walk(document)
    return tuple(sorted((v for v in found if len(v) >= MIN_FREE_TEXT_LENGTH), key=len, reverse=True))


@contextmanager
def invocation(
    invocation: str,
    function_name: str,
    request: Mapping[str, Any] | None = None,
    payload: bytes | None = None,
) -> Iterator[None]:
    """Scope one function invocation: log context, a Sentry scope, a bounded flush before
    returning. `request` gives the event's request data; only `method` and `url` (the route
    template) are kept. The free text in `payload` (the request or message body) is kept out
    of every event this invocation sends."""
    token = invocation_id.set(invocation)
    text_token = _free_text.set(free_text(payload) if _sentry_on else ())
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_tag("function", function_name)
            scope.set_tag("invocation_id", invocation)
            if request is not None:
                allowed = {k: str(request[k]) for k in REQUEST_FIELDS if k in request}

                def add_request(event: Any, _hint: Any) -> Any:
                    event["request"] = dict(allowed)
                    return event

                scope.add_event_processor(add_request)
                if "url" in allowed:
                    scope.set_tag("route", allowed["url"])
            yield
    finally:
        invocation_id.reset(token)
        _free_text.reset(text_token)
        if _sentry_on:
            flush()


def set_user(user_id: str) -> None:
    """The caller's id only: no name or IP address, and an id that is an e-mail address
    (as dev tokens and some identity providers use) goes as a stable pseudonym."""
    sentry_sdk.get_isolation_scope().set_user({"id": sentry_user_id(user_id)})


def sentry_user_id(user_id: str) -> str:
    if "@" not in user_id:
        return user_id
    return "user-" + hashlib.sha256(user_id.encode()).hexdigest()[:16]


class SentryTelemetry:
    """Autonomous actions as Sentry data: tags for alert rules, `agent.confidence` as a metric."""

    def action(
        self, ticket_id: int, action_type: str, confidence: float | None, level: str, outcome: str
    ) -> None:
        tags = {
            "component": "autonomous_agent",
            "action_type": action_type,
            "confidence_level": level,
            "outcome": outcome,
        }
        scope = sentry_sdk.get_isolation_scope()
        for key, value in tags.items():
            scope.set_tag(key, value)
        sentry_sdk.add_breadcrumb(category="agent", message=f"ticket {ticket_id}: {outcome}", data=tags)
        if confidence is not None:
            sentry_sdk.metrics.distribution("agent.confidence", float(confidence), attributes=tags)

    def rollback(self, ticket_id: int, action_type: str, admin: str) -> None:
        tags = {"event": "rollback", "action_type": action_type, "component": "autonomous_agent"}
        with sentry_sdk.new_scope() as scope:
            for key, value in tags.items():
                scope.set_tag(key, value)
            scope.set_user({"id": sentry_user_id(admin)})
            scope.set_context("rollback", {"ticket_id": ticket_id})
            sentry_sdk.capture_message(f"{action_type} on ticket {ticket_id} rolled back", level="warning")
