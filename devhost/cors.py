"""CORS as Azure Functions Core Tools does it: `Host.CORS` / `Host.CORSCredentials` of
local.settings.json (or `--cors` / `--cors-credentials`) make one ASP.NET Core CORS policy in
front of every route.

Where it was verified:
- Core Tools (Azure/azure-functions-core-tools, src/Cli/func/Actions/HostActions/Startup.cs):
  `CORS` split on "," dropping empty entries (no trimming: " http://b" never matches), then
  `app.UseCors(b => b.WithOrigins(origins).AllowAnyHeader().AllowAnyMethod()` plus
  `.AllowCredentials()` when CORSCredentials is true) before the script host. No exposed headers,
  no max age. The Functions host's own CORS (azure-functions-host,
  WebJobs.Script.WebHost/Configuration/CorsOptionsSetup.cs, Linux consumption) builds the same
  policy from CORS_ALLOWED_ORIGINS / CORS_SUPPORT_CREDENTIALS.
- ASP.NET Core (dotnet/aspnetcore, src/Middleware/CORS): CorsPolicyBuilder.WithOrigins lower-cases
  each origin (IDN hosts punycoded); `*` allows any origin only when it is the only entry, and
  with credentials Build() throws (the host does not start). CorsMiddleware: no `Origin` header,
  nothing happens; OPTIONS with `Access-Control-Request-Method` is a preflight, answered 204 right
  there (it never reaches routing or a function), with the CORS headers only if the origin is
  allowed. CorsService: the allowed origin (compared ordinally) is echoed, or `*`;
  Access-Control-Allow-Methods echoes the requested method, Access-Control-Allow-Headers the
  requested headers; `Access-Control-Allow-Credentials: true` only with credentials; `Vary: Origin`
  appended when more than one origin is listed. On any other request from an allowed origin,
  Access-Control-Allow-Origin (and Vary) are set on whatever response goes out, a 404 or 500 too;
  headers the function set itself (such as Access-Control-Expose-Headers) are kept.
ASP.NET Core writes a multi-valued header as several lines; devhost joins them with ", ", which
HTTP treats as the same value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("devhost")


def _normalized(origin: str) -> str:
    """CorsPolicyBuilder.GetNormalizedOrigin: lower-cased; an IDN host punycoded."""
    scheme, sep, rest = origin.partition("://")
    if sep and scheme.lower() in ("http", "https") and not rest.isascii():
        host, colon, port = rest.rstrip("/").partition(":")
        try:
            return f"{scheme.lower()}://{host.encode('idna').decode().lower()}{colon}{port}"
        except UnicodeError:
            pass
    return origin.lower()


@dataclass(frozen=True)
class CorsPolicy:
    origins: tuple[str, ...]
    credentials: bool

    @classmethod
    def from_host(cls, host: Mapping[str, Any]) -> CorsPolicy | None:
        """The policy of a Host section, None when CORS is empty (no middleware at all).
        Raises ValueError where the host would not start."""
        value = str(host.get("CORS") or "")
        if not value:
            return None
        policy = cls(
            tuple(_normalized(o) for o in value.split(",") if o),
            _flag(host.get("CORSCredentials")),
        )
        if policy.any_origin and policy.credentials:
            raise ValueError(
                "Host.CORS '*' with CORSCredentials true: the CORS protocol does not allow a wildcard "
                "origin with credentials (ASP.NET Core refuses this policy)"
            )
        for origin in policy.origins:
            if origin != origin.strip():
                log.warning(
                    "CORS origin %r has spaces around it and will never match (Core Tools does not trim)",
                    origin,
                )
        return policy

    @property
    def any_origin(self) -> bool:
        return self.origins == ("*",)

    def allows(self, origin: str) -> bool:
        return bool(origin) and (self.any_origin or origin in self.origins)

    def headers(self, request: Headers, preflight: bool, method: str) -> list[tuple[str, str]]:
        """CorsService.ApplyResult: the response headers for this request, [] for a stranger."""
        origin = request.get("origin", "")
        if not self.allows(origin):
            return []
        out = [("Access-Control-Allow-Origin", "*" if self.any_origin else origin)]
        if self.credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        if preflight:
            requested = _comma_separated(request.getlist("access-control-request-headers"))
            if requested:
                out.append(("Access-Control-Allow-Headers", ", ".join(requested)))
            out.append(("Access-Control-Allow-Methods", request.get("access-control-request-method", "")))
        vary = self.credentials if self.any_origin else len(self.origins) > 1
        if vary:
            out.append(("Vary", "Origin"))
        return out


def _flag(value: Any) -> bool:
    """Core Tools reads CORSCredentials as a JSON bool; a string "true" is taken the same way."""
    return value is True or str(value).strip().lower() == "true"


def _comma_separated(values: list[str]) -> list[str]:
    """HeaderUtilities' comma-separated values: split, trimmed, empty entries dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class CorsMiddleware:
    """ASP.NET Core's CorsMiddleware with one policy, as Core Tools installs it."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Headers(scope=scope)
        if "origin" not in request:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method.upper() == "OPTIONS" and "access-control-request-method" in request:
            headers = self.policy.headers(request, preflight=True, method=method)
            await send({"type": "http.response.start", "status": 204, "headers": _raw(headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = self.policy.headers(request, preflight=False, method=method)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                response = MutableHeaders(scope=message)
                for name, value in extra:
                    if name == "Vary":
                        response.append(name, value)
                    else:
                        response[name] = value
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _raw(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
