"""Client for the external agent service (``AGENT_API_URL``): retries, a circuit breaker, Sentry.

``AgentApiClient.analyse`` returns an ``Analysis``, as the embedded agent does, or raises
``AgentUnavailable``; the caller then defers the ticket to humans. The API key is sent
in a header and never appears in an exception, a log line or a Sentry event; nor does
the URL, which may carry a key in its query.

The answer is bounded: each attempt has one deadline (``timeout``) covering connect,
send and every read, however the server trickles its bytes; the body is read as a
stream and refused past ``MAX_RESPONSE_BYTES``; its strings are cut to the lengths in
``LIMITS``, so an analysis always fits in the ticket's storage row.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
import sentry_sdk
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import errors
from shared.deadline import DeadlineTransport, attempt_deadline, within_deadline
from shared.domain.analysis import Analysis, Details, Provenance, Solution

logger = logging.getLogger("resolvemeq.agent_api")

REQUEST_KEYS = ("ticket_id", "issue_type", "description", "category", "tags", "user")
MAX_BACKOFF_SECONDS = 30.0
# Each delay is backoff * 2**n stretched by up to this share: delays still grow strictly,
# yet instances that failed together do not retry in lockstep.
JITTER = 0.5

BreakerState = Literal["closed", "open", "half_open"]

MAX_RESPONSE_BYTES = 64 * 1024
# Longest kept string per field (characters). With control characters removed, each
# character takes at most two UTF-16 units in the stored JSON (a quote or backslash is
# escaped, a non-BMP character is a surrogate pair): the analysis stays under ~14K of the
# 32K units a Table string property holds, leaving room for the ticket it is stored with.
LIMITS = {
    "reasoning": 2000,
    "step": 500,
    "steps": 20,
    "steps_total": 4000,
    "recommended_action": 64,
    "label": 50,  # severity, category, complexity
    "short": 100,  # suggested_team, estimated_time, version
}
# C0/C1 controls (a JSON escape makes each 6 characters long) and lone surrogates (which
# cannot be encoded at all); newlines and tabs stay.
_UNSTORABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clip(value: str, limit: int) -> str:
    """``value`` without unstorable characters, cut to ``limit`` characters."""
    return _UNSTORABLE.sub("", value)[:limit]


class AgentUnavailable(errors.AgentUnavailable):
    """The agent service could not give an answer (after retries, or the breaker is open)."""

    def __init__(self, reason: str, *, status_code: int | None = None, attempts: int = 0) -> None:
        self.reason = reason
        self.status_code = status_code
        self.attempts = attempts
        message = f"agent service unavailable: {reason}"
        if attempts > 1:
            message += f" after {attempts} attempts"
        super().__init__(message)


class CircuitBreaker:
    """Counts consecutive failed calls; at ``failure_threshold`` it opens and refuses calls for
    ``reset_after`` seconds, then lets exactly one trial call through (half-open). The trial's
    success closes it, its failure opens it again. Thread-safe; ``clock`` returns monotonic seconds.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_after < 0:
            raise ValueError("reset_after must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_started_at = 0.0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state == "open" and self._clock() - self._opened_at >= self.reset_after:
                return "half_open"
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def allow(self) -> bool:
        with self._lock:
            if self._state == "closed":
                return True
            now = self._clock()
            if self._state == "open":
                if now - self._opened_at < self.reset_after:
                    return False
                self._state = "half_open"
                self._trial_started_at = now
                return True
            # Half-open with a trial in flight. A trial that never reported back (its worker
            # died) must not keep the breaker shut for ever: after reset_after, allow another.
            if now - self._trial_started_at >= self.reset_after:
                self._trial_started_at = now
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = "closed"
            self._failures = 0

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            opens = self._state == "half_open" or self._failures >= self.failure_threshold
            if opens and self._state != "open":
                logger.warning("agent service circuit opened after %d consecutive failures", self._failures)
                self._state = "open"
                self._opened_at = self._clock()


class _Analysis(BaseModel):
    model_config = ConfigDict(extra="allow")

    severity: str | None = None
    category: str | None = None
    suggested_team: str | None = None
    complexity: str | None = None


class _Solution(BaseModel):
    model_config = ConfigDict(extra="allow")

    steps: list[str] = Field(default_factory=list)
    estimated_time: str | None = None
    success_probability: float = Field(default=0.0, ge=0, le=1, strict=True)

    @field_validator("steps", mode="before")
    @classmethod
    def _no_steps(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("estimated_time", mode="before")
    @classmethod
    def _time_as_text(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value


class AgentResponse(BaseModel):
    """What the agent service must answer; unknown fields are allowed and ignored."""

    model_config = ConfigDict(extra="allow")

    confidence: float = Field(ge=0, le=1, strict=True)
    recommended_action: str
    reasoning: str = ""
    analysis: _Analysis = Field(default_factory=_Analysis)
    solution: _Solution = Field(default_factory=_Solution)

    @field_validator("recommended_action")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        action = snake_case(clip(value, 4 * LIMITS["recommended_action"]))[: LIMITS["recommended_action"]]
        if not action:
            raise ValueError("recommended_action is empty")
        return action

    @field_validator("reasoning", mode="before")
    @classmethod
    def _no_reasoning(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("analysis", "solution", mode="before")
    @classmethod
    def _missing_part(cls, value: Any) -> Any:
        return {} if value is None else value


def snake_case(value: str) -> str:
    """``"Auto Resolve"``, ``"autoResolve"``, ``"AUTO-RESOLVE"`` → ``"auto_resolve"``."""
    value = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", value.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", value).strip("_").lower()


def request_body(ticket: dict[str, Any]) -> dict[str, Any]:
    """Exactly the six fields the agent service receives."""
    body = {key: ticket.get(key) for key in REQUEST_KEYS}
    if body["tags"] is None:
        body["tags"] = []
    return body


def to_analysis(response: AgentResponse, ticket: dict[str, Any]) -> Analysis:
    """The embedded agent's shape, with provenance ``agent: {kind: external, version}``."""
    extra = response.model_extra or {}
    version = extra.get("version") or extra.get("model")
    analysis = response.analysis
    short, label = LIMITS["short"], LIMITS["label"]

    def name(value: str | None) -> str:
        return snake_case(clip(value or "", 4 * label))[:label]

    steps, budget = [], LIMITS["steps_total"]
    for step in response.solution.steps[: LIMITS["steps"]]:
        kept = clip(step, min(LIMITS["step"], budget))
        if kept:
            steps.append(kept)
            budget -= len(kept)
    return Analysis(
        confidence=float(response.confidence),
        recommended_action=response.recommended_action,
        reasoning=clip(response.reasoning, LIMITS["reasoning"]),
        analysis=Details(
            severity=name(analysis.severity) or "medium",
            category=name(analysis.category) or ticket.get("category") or "other",
            suggested_team=clip(analysis.suggested_team or "", short) or None,
            complexity=name(analysis.complexity) or "medium",
        ),
        solution=Solution(
            steps=steps,
            estimated_time=clip(response.solution.estimated_time or "", short) or "unknown",
            success_probability=float(response.solution.success_probability),
        ),
        knowledge_base_entries=[],
        agent=Provenance(kind="external", version=clip(str(version), short) if version else "unknown"),
    )


class _TooLarge(Exception):
    pass


class _Retryable(Exception):
    def __init__(self, reason: str, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class AgentApiClient:
    """POSTs a ticket to the external agent service and validates the answer.

    Retries 5xx, 429, timeouts and connection errors ``retries`` times with exponential
    backoff and jitter; other 4xx and invalid answers fail at once. Every failed call counts
    against the circuit breaker, is logged and reported to Sentry (``component: agent_api``).
    One ``httpx.Client`` per instance, safe to share between threads.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float,
        retries: int = 2,
        backoff: float = 0.5,
        breaker: CircuitBreaker | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must not be negative")
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep
        self._random = random.Random()
        # identity: the size bound counts the bytes that arrive, and no decompression bomb.
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "resolvemeq-functions",
        }
        if api_key:
            headers["X-API-Key"] = api_key
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport or DeadlineTransport(),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AgentApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        """Analyse a ticket; raises ``AgentUnavailable`` when no valid answer comes back."""
        body = request_body(ticket)
        if not self.breaker.allow():
            sentry_sdk.add_breadcrumb(
                category="agent_api", level="warning", message="agent service call skipped: circuit open"
            )
            logger.warning("agent service call skipped for ticket %s: circuit open", body["ticket_id"])
            raise AgentUnavailable("circuit open")
        try:
            answer = self._call(body)
        except AgentUnavailable as exc:
            self.breaker.record_failure()
            self._report(exc, body["ticket_id"])
            raise
        except BaseException:
            self.breaker.record_failure()  # never leave a half-open trial hanging
            raise
        self.breaker.record_success()
        return to_analysis(answer, ticket)

    def _call(self, body: dict[str, Any]) -> AgentResponse:
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(body, attempt)
            except _Retryable as exc:
                failure = exc
            if attempt == attempts:
                break
            delay = self._delay(attempt)
            logger.warning(
                "agent service attempt %d of %d failed (%s); retrying in %.2f s",
                attempt,
                attempts,
                failure.reason,
                delay,
            )
            self._sleep(delay)
        raise AgentUnavailable(failure.reason, status_code=failure.status_code, attempts=attempts)

    def _attempt(self, body: dict[str, Any], attempt: int) -> AgentResponse:
        answer = self._post(body, attempt)
        if isinstance(answer, Exception):
            raise answer
        status, content = answer
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", status)
        if not 200 <= status < 300:
            raise AgentUnavailable(f"HTTP {status}", status_code=status, attempts=attempt)
        try:
            return AgentResponse.model_validate(json.loads(content))
        except ValidationError as exc:
            # Only field locations: a validation message quotes the input, which is the
            # service's text and may echo anything.
            fields = sorted({".".join(str(p) for p in error["loc"]) or "<root>" for error in exc.errors()})
            logger.warning("agent service answered with invalid fields: %s", ", ".join(fields))
        except ValueError:
            logger.warning("agent service answered with a body that is not JSON")
        raise AgentUnavailable("invalid response", status_code=status, attempts=attempt)

    def _post(self, body: dict[str, Any], attempt: int) -> tuple[int, bytes] | Exception:
        # Failures are returned, not raised from the except clause, so that they carry no
        # chained httpx exception: its message and frames hold the request, API key included.
        with attempt_deadline(self.timeout):
            return self._post_within(body, attempt)

    def _post_within(self, body: dict[str, Any], attempt: int) -> tuple[int, bytes] | Exception:
        try:
            return self._exchange(body)
        except _TooLarge:
            return AgentUnavailable("response too large", attempts=attempt)
        except httpx.TimeoutException:
            return _Retryable("timeout")
        except httpx.TransportError as exc:
            return _Retryable(f"connection error ({type(exc).__name__})")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return AgentUnavailable(f"request error ({type(exc).__name__})", attempts=attempt)

    def _exchange(self, body: dict[str, Any]) -> tuple[int, bytes]:
        """The status and, for a 2xx, the body: read as a stream, at most MAX_RESPONSE_BYTES."""
        with self._client.stream("POST", self.url, json=body) as response:
            if not 200 <= response.status_code < 300:
                return response.status_code, b""
            if response.headers.get("Content-Encoding", "identity").lower() != "identity":
                return response.status_code, b""  # not the JSON asked for: an invalid answer
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise _TooLarge
            chunks, size = [], 0
            for chunk in response.iter_bytes():  # identity: the bytes as they arrive
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _TooLarge
                chunks.append(chunk)
                within_deadline(None, httpx.ReadTimeout)  # also for transports without sockets
            return response.status_code, b"".join(chunks)

    def _delay(self, attempt: int) -> float:
        base = self.backoff * 2 ** (attempt - 1)
        return min(base * (1 + JITTER * self._random.random()), MAX_BACKOFF_SECONDS)

    def _report(self, exc: AgentUnavailable, ticket_id: Any) -> None:
        kind = exc.reason.split(" (")[0]
        data = {"reason": exc.reason, "status_code": exc.status_code, "attempts": exc.attempts}
        logger.warning("agent service call for ticket %s failed: %s", ticket_id, exc)
        try:
            sentry_sdk.add_breadcrumb(category="agent_api", level="error", message=str(exc), data=data)
            with sentry_sdk.new_scope() as scope:
                scope.set_tag("component", "agent_api")
                scope.set_tag("agent_api.reason", kind)
                scope.set_context("agent_api", {**data, "ticket_id": ticket_id})
                scope.fingerprint = ["agent_api", kind]
                sentry_sdk.capture_message(str(exc), level="error")
        except Exception:  # a Sentry problem must never change the outcome
            logger.debug("could not report the agent service failure to Sentry", exc_info=True)
