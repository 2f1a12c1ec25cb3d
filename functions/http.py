"""The HTTP adapter layer: auth, body parsing, problem+json, invocation scope. Written once."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import sentry_sdk
from azure.core.exceptions import AzureError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from shared import observability
from shared.container import Container, get_container, storage_failed
from shared.domain.models import Principal
from shared.errors import (
    AppError,
    ConcurrencyConflict,
    ConcurrentUpdate,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.storage.ratelimit import RateLimitContentionError

MAX_BODY_BYTES = 64 * 1024
PROBLEM_TYPE = "https://resolvemeq.dev/problems/"
JSON_TYPE = re.compile(r"^application/([\w.+-]+\+)?json\s*(;.*)?$", re.IGNORECASE)
FORM_TYPE = re.compile(r"^application/x-www-form-urlencoded\s*(;.*)?$", re.IGNORECASE)
M = TypeVar("M", bound=BaseModel)


class Query(BaseModel):
    """Query parameters. An empty value (`?status=`) means the parameter is absent, as on the
    Azure host, which drops empty values before the function sees them."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if v != ""}
        return values


log = logging.getLogger("resolvemeq.http")


Access = Literal["public", "user", "staff", "admin"]
# The route template's parameter types, as the Functions host constrains them (it answers 404 to a
# value that does not fit, before the function runs); a plain `{name}` is a string.
ROUTE_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
ROUTE_TYPES = {"int": "integer", "long": "integer", "bool": "boolean", "double": "number", "float": "number"}


def route_params(route: str) -> dict[str, str]:
    """`{"id": "integer", "action_id": "string"}` for `tickets/{id:int}/rollback/{action_id}`."""
    return {name: ROUTE_TYPES.get(kind, "string") for name, kind in ROUTE_PARAM.findall(route)}


@dataclass
class Request:
    """One HTTP invocation as the handlers see it: body, query and route parameters."""

    req: func.HttpRequest
    container: Container

    def body(self, model: type[M], optional: bool = False) -> M:
        """The JSON body as `model`; 413, 415 and 400 (with `errors[]`) before anything is written."""
        raw = self.req.get_body() or b""
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body exceeds {MAX_BODY_BYTES // 1024} KiB.")
        if optional and not raw.strip():
            raw = b"{}"
        elif not JSON_TYPE.match(self.req.headers.get("Content-Type", "")):
            raise UnsupportedMediaType("Send the request body as application/json.")
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise validation_failed(exc) from None

    def form(self, model: type[M]) -> M:
        """An HTML form's body (application/x-www-form-urlencoded) as `model`, for the routes a
        browser posts a plain form to (one-click answers) and only those: every other route
        takes JSON. An empty body is an empty form; a field sent twice is a 400."""
        raw = self.req.get_body() or b""
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body exceeds {MAX_BODY_BYTES // 1024} KiB.")
        if raw.strip() and not FORM_TYPE.match(self.req.headers.get("Content-Type", "")):
            raise UnsupportedMediaType("Send the form as application/x-www-form-urlencoded.")
        try:
            pairs = parse_qsl(raw.decode("utf-8", errors="strict"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            raise ValidationFailed(
                "The form is not valid UTF-8.", [{"loc": "body", "msg": "Malformed form."}]
            ) from None
        fields: dict[str, str] = {}
        for name, value in pairs:
            if name in fields:
                raise ValidationFailed(
                    "The form has a field twice.", [{"loc": name, "msg": "Repeated field."}]
                )
            fields[name] = value
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            raise validation_failed(exc) from None

    def route_int(self, name: str) -> int:
        return int(self.req.route_params[name])

    def query(self, model: type[M]) -> M:
        try:
            return model.model_validate(dict(self.req.params))
        except ValidationError as exc:
            raise validation_failed(exc) from None


@dataclass
class Call(Request):
    """A call to a route with `access` user, staff or admin: the caller holds that role."""

    caller: Principal


@dataclass
class PublicCall(Request):
    """A call to a public route: the caller if a valid token came, else None (anonymous)."""

    caller: Principal | None


def validation_failed(exc: ValidationError) -> ValidationFailed:
    errors = [{"loc": ".".join(str(p) for p in e["loc"]) or "body", "msg": _message(e)} for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return ValidationFailed("The request body is not valid JSON.", errors)
    return ValidationFailed("The request has invalid fields; see errors.", errors)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "Unknown field."
    if error["type"] == "json_invalid":
        return "Malformed JSON."
    return str(error["msg"])


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return func.HttpResponse(
        json.dumps(data, default=str), status_code=status, headers=headers, mimetype="application/json"
    )


PROBLEM_JSON = "application/problem+json"


def _accept_q(accept: str, wanted: str) -> float:
    """The q the Accept header gives `wanted`: the most specific media range that matches it
    wins (RFC 9110 §12.5.1); 0 when none does. A range or q that does not parse counts for nothing."""
    kind, _, _ = wanted.partition("/")
    best: tuple[int, float] = (-1, 0.0)  # (specificity, q)
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        specificity = {wanted: 2, f"{kind}/*": 1, "*/*": 0}.get(media)
        if specificity is None or specificity < best[0]:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        best = max(best, (specificity, q))
    return best[1]


def error_media_type(accept: str | None) -> str:
    """SPEC §5: problem+json when the request's Accept names it (with q > 0, and not below
    application/json), application/json otherwise: no Accept, `*/*` (what the web app sends; it
    parses only `application/json`), `application/json`, or anything that does not parse."""
    accept = accept or ""
    named = any(item.split(";")[0].strip().lower() == PROBLEM_JSON for item in accept.split(","))
    problem_q = _accept_q(accept, PROBLEM_JSON)
    if named and problem_q > 0 and problem_q >= _accept_q(accept, "application/json"):
        return PROBLEM_JSON
    return "application/json"


def prefers_json(accept: str | None) -> bool:
    """Whether the client would rather have JSON (or problem+json) than an HTML page: for the
    routes that answer a browser with a page (one-click answers). A browser's Accept, none, or
    `*/*` get the page."""
    accept = accept or ""
    best = max(_accept_q(accept, "application/json"), _accept_q(accept, PROBLEM_JSON))
    return best > _accept_q(accept, "text/html")


def problem(error: AppError, accept: str | None = None) -> func.HttpResponse:
    """The one rendering of an error: the same problem object whatever the media type."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        **error.extra,
    }
    headers: dict[str, str] = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="resolvemeq"'
    if isinstance(error, Throttled):
        headers.update(error.headers, **{"Retry-After": str(error.retry_after)})
    return func.HttpResponse(
        json.dumps(body), status_code=error.status, headers=headers, mimetype=error_media_type(accept)
    )


# Response headers the web app may read. A browser shows a cross-origin script only the
# CORS-safelisted ones unless the response names the others in Access-Control-Expose-Headers. The
# CORS layer in front (Core Tools, the Functions host, App Service) answers preflights and sets
# Access-Control-Allow-Origin, and keeps this header as the function set it.
EXPOSED = ("X-Next-Cursor", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def exposed(response: func.HttpResponse) -> func.HttpResponse:
    """Name the readable headers this response carries (none: the header is left out)."""
    present = [name for name in EXPOSED if name in response.headers]
    if present and "Access-Control-Expose-Headers" not in response.headers:
        response.headers["Access-Control-Expose-Headers"] = ", ".join(present)
    return response


INTERNAL_ERROR = AppError("Something went wrong on our side. Please try again later.")

Handler = Callable[[Call], func.HttpResponse]
PublicHandler = Callable[[PublicCall], func.HttpResponse]
AnyHandler = Callable[[Any], func.HttpResponse]

# What a role check refuses with; the roles are ordered: admin includes staff includes user.
DENIED = {"staff": "Only staff can do this.", "admin": "Only admins can do this."}


def authorize(access: Access, req: func.HttpRequest, container: Container) -> Principal:
    """The caller, if `access` admits them; before anything reads the body, so 401 (no valid
    token) and 403 (not the role) come before 400, 413 and 415."""
    principal = container.auth.authenticate(req.headers.get("Authorization"))
    observability.set_user(principal.sub)
    if (access == "staff" and not principal.is_staff) or (access == "admin" and not principal.is_admin):
        raise Forbidden(DENIED[access])
    return principal


def caller_if_any(req: func.HttpRequest, container: Container) -> Principal | None:
    """A public route's caller: a missing or bad token is anonymous, not a 401. An auth outage
    (503: settings refused, JWKS down) is still an outage."""
    if not req.headers.get("Authorization"):
        return None
    try:
        return authorize("user", req, container)
    except Unauthenticated:
        return None


@dataclass(frozen=True)
class Operation:
    """One HTTP function as registered, for the OpenAPI document and the authorization tests."""

    name: str
    route: str
    method: str
    access: Access
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    status: int
    response: type[BaseModel] | None
    other_responses: Mapping[int, type[BaseModel]] = field(default_factory=dict)  # by status
    local_only: bool = False  # ENVIRONMENT=local only: 404 elsewhere, and not in OpenAPI there


OPERATIONS: list[Operation] = []


@overload
def api(
    bp: func.Blueprint,
    name: str,
    route: str,
    method: str,
    *,
    access: Literal["public"],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    response: type[BaseModel] | None = None,
    other_responses: Mapping[int, type[BaseModel]] | None = None,
    local_only: bool = False,
) -> Callable[[PublicHandler], Any]: ...


@overload
def api(
    bp: func.Blueprint,
    name: str,
    route: str,
    method: str,
    *,
    access: Literal["user", "staff", "admin"],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    response: type[BaseModel] | None = None,
    other_responses: Mapping[int, type[BaseModel]] | None = None,
    local_only: bool = False,
) -> Callable[[Handler], Any]: ...


def api(
    bp: func.Blueprint,
    name: str,
    route: str,
    method: str,
    *,
    access: Access,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    response: type[BaseModel] | None = None,
    other_responses: Mapping[int, type[BaseModel]] | None = None,
    local_only: bool = False,
) -> Callable[[AnyHandler], Any]:
    """Register an HTTP function (name, route, method, who may call it, adapter) and describe it
    for OpenAPI. The handler gets a `Call` whose caller holds the role (`PublicCall`, caller or
    None, when public); it never runs for a caller the route refuses."""
    if access not in ("public", "user", "staff", "admin"):
        raise ValueError(f"{name}: unknown access {access!r}")

    def register(handler: AnyHandler) -> Any:
        summary = (handler.__doc__ or name).strip().splitlines()[0]
        OPERATIONS.append(
            Operation(
                name,
                route,
                method,
                access,
                summary,
                body,
                query,
                status,
                response,
                dict(other_responses or {}),
                local_only,
            )
        )
        wrapped = endpoint(handler, access, route, local_only)
        return bp.function_name(name)(bp.route(route=route, methods=[method])(wrapped))

    return register


def endpoint(
    handler: AnyHandler, access: Access, route: str = "", local_only: bool = False
) -> Callable[[func.HttpRequest, func.Context], func.HttpResponse]:
    """Wrap a handler: invocation scope, authentication and the role check before anything else
    (401/403 come before any body error), the one error mapping, a flush before returning."""
    route_template = f"/api/{route}" if route else handler.__name__

    def run(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return exposed(respond(req, context))

    def respond(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        invocation = getattr(context, "invocation_id", None) or str(uuid.uuid4())
        # Sentry gets an allowlist: never the raw URL (ids, query) nor headers (IP, tokens).
        request = {"method": req.method, "url": route_template}
        accept = req.headers.get("Accept")
        with observability.invocation(invocation, handler.__name__, request, req.get_body()):
            try:
                container = get_container()
                if local_only and container.settings.environment != "local":
                    # Before the caller or the body is looked at: outside local the route does not exist.
                    raise NotFound(f"No function matches {req.method} {urlsplit(req.url).path}.")
                if access == "public":
                    return handler(PublicCall(req, container, caller_if_any(req, container)))
                return handler(Call(req, container, authorize(access, req, container)))
            except ServiceUnavailable as error:  # settings refused, JWKS down: 503, never 401 or 500
                response = problem(error, accept)
                if error.retry_after:
                    response.headers["Retry-After"] = str(error.retry_after)
                return response
            except AppError as error:
                return problem(error, accept)
            except ConcurrencyConflict:  # still losing the race after the service's retries
                return problem(
                    ConcurrentUpdate("The record changed while we updated it; please try again."), accept
                )
            except (AzureError, RateLimitContentionError) as exc:
                unavailable = storage_failed(exc)
                if unavailable is None:  # a 4xx from storage: our bug, not an outage
                    log.exception("storage refused a request in %s", handler.__name__)
                    sentry_sdk.capture_exception()
                    return problem(INTERNAL_ERROR, accept)
                # The type only: an SDK message can carry a URL with a SAS token. Sentry gets the
                # event (scrubbed there), so an outage shows as one issue with its count.
                log.warning("%s in %s: %s", unavailable.code, handler.__name__, type(exc).__name__)
                sentry_sdk.capture_exception(exc)
                response = problem(unavailable, accept)
                response.headers["Retry-After"] = str(unavailable.retry_after or 5)
                return response
            except Exception:
                log.exception("unhandled error in %s", handler.__name__)
                sentry_sdk.capture_exception()
                return problem(INTERNAL_ERROR, accept)

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run
