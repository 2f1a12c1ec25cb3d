"""Domain errors with stable codes; the HTTP adapter maps them to problem+json once."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error a caller may see. `detail` is a sentence the frontend shows."""

    status = 500
    code = "internal_error"
    title = "Internal Server Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationFailed(AppError):
    status, code, title = 400, "validation_error", "Invalid request"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class Unauthenticated(AppError):
    status, code, title = 401, "not_authenticated", "Authentication required"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class ConcurrentUpdate(Conflict):
    """A change that kept losing the race against concurrent writers, after the retries."""

    code = "concurrent_update"


class StatusLocked(Conflict):
    code = "status_locked"


class RollbackConflict(Conflict):
    """A refused rollback: `code` is the domain's (already_rolled_back, not_reversible, ticket_changed)."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.code = code


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class Throttled(AppError):
    status, code, title = 429, "throttled", "Too many requests"

    def __init__(self, detail: str, retry_after: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers = headers or {}


class ServiceUnavailable(AppError):
    """503: nothing the caller did wrong; `retry_after` seconds (if any) go in `Retry-After`."""

    status, code, title = 503, "service_unavailable", "Service unavailable"
    retry_after: int | None = 5


class StorageUnavailable(ServiceUnavailable):
    """Storage failed, timed out or was unreachable (after the SDK's bounded retries)."""

    code = "storage_unavailable"


class ThrottleContended(ServiceUnavailable):
    """A throttle counter stayed contended past its retries; the request was not counted."""

    code = "throttle_contended"
    retry_after = 1


class AuthUnavailable(ServiceUnavailable):
    """The keys that verify bearer tokens (JWKS) could not be fetched."""

    code = "auth_unavailable"


class RollbackLogFull(ServiceUnavailable):
    """The rollback log holds as many rollbacks within its window as its row can; the rollback
    was not counted (nor done), none counted before was dropped."""

    code = "rollback_log_full"
    retry_after = 60


class ServiceMisconfigured(ServiceUnavailable):
    """The app's settings were refused; `detail` names the settings, never their values."""

    code, title = "service_misconfigured", "Service misconfigured"
    retry_after = None


class ConcurrencyConflict(Exception):
    """A conditional write lost a race; the service retries or reports a Conflict."""


class AgentUnavailable(Exception):
    """The agent service gave no usable answer (after retries, or its breaker is open)."""


class RequestInProgress(Exception):
    """Another worker holds this request's record; the message is retried later."""
