"""Structured logging with the invocation id, and Sentry (only when SENTRY_DSN is set)."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sentry_sdk
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from shared.config import Settings

invocation_id: contextvars.ContextVar[str] = contextvars.ContextVar("invocation_id", default="-")
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "x-functions-key"})
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
    logging.getLogger("azure").setLevel(logging.WARNING)


def init_sentry(settings: Settings) -> bool:
    """Initialise Sentry once per worker when a DSN is set; never raises."""
    global _sentry_on
    if _sentry_on or not settings.sentry_dsn:
        return _sentry_on
    secrets = {s for s in (settings.auth_jwt_secret, settings.agent_api_key) if s}

    def before_send(event: dict[str, Any], _hint: Any) -> dict[str, Any]:
        return _scrub(event, secrets)

    try:
        sentry_sdk.init(
            dsn=settings.sentry_dsn,
            environment=settings.environment,
            release=settings.app_version,
            traces_sample_rate=settings.sentry_traces_sample_rate,
            event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, "x_api_key", "api_key", "jwt"]),
            before_send=before_send,  # type: ignore[arg-type]
            default_integrations=True,
        )
        _sentry_on = True
    except Exception:  # a bad DSN must not take the app down
        logging.getLogger(__name__).exception("Sentry could not be initialised")
    return _sentry_on


def _scrub(value: Any, secrets: set[str]) -> Any:
    """Drop sensitive headers and any literal secret value, keeping the event."""
    if isinstance(value, Mapping):
        return {
            k: "[Filtered]" if isinstance(k, str) and k.lower() in SENSITIVE_HEADERS else _scrub(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, str) and any(s in value for s in secrets):
        for secret in secrets:
            value = value.replace(secret, "[Filtered]")
    return value


@contextmanager
def invocation(
    invocation: str, function_name: str, request: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Scope one function invocation: log context, a Sentry scope, a flush before returning."""
    token = invocation_id.set(invocation)
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_tag("function", function_name)
            scope.set_tag("invocation_id", invocation)
            if request is not None:
                scope.add_event_processor(lambda event, _hint: {**event, "request": dict(request)})
            yield
    finally:
        invocation_id.reset(token)
        if _sentry_on:
            sentry_sdk.flush(timeout=2)


def set_user(user_id: str) -> None:
    sentry_sdk.get_isolation_scope().set_user({"id": user_id})


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
