"""The web client's local-only login (`/api/auth/...`, SPEC §4): login, refresh, profile.

Public and `local_only` routes: outside ENVIRONMENT=local the adapter answers 404 before it looks
at a token or a body, as if they did not exist (a `user` route would answer 401 and show it does).
"""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import BaseModel, ConfigDict, StringConstraints

from functions.http import PublicCall, api, json_response
from shared.auth import DevLogin, profile
from shared.domain.models import Storable
from shared.errors import Unauthenticated

bp = func.Blueprint()

Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254), Storable]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=4096), Storable]


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Secret


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh: Secret


class Profile(BaseModel):
    id: str
    email: str
    first_name: str
    last_name: str
    is_staff: bool


class LoginAnswer(BaseModel):
    access: str
    refresh: str
    user: Profile


class RefreshAnswer(BaseModel):
    access: str


@api(
    bp,
    "auth_login",
    "auth/login",
    "POST",
    access="public",
    local_only=True,
    body=LoginBody,
    response=LoginAnswer,
)
def auth_login(call: PublicCall) -> func.HttpResponse:
    """POST /api/auth/login/ (local only): any e-mail with DEV_LOGIN_PASSWORD."""
    body = call.body(LoginBody)
    access, refresh, who = DevLogin(call.container.settings).login(body.email, body.password)
    return json_response({"access": access, "refresh": refresh, "user": profile(who)})


@api(
    bp,
    "auth_refresh",
    "auth/api/token/refresh",
    "POST",
    access="public",
    local_only=True,
    body=RefreshBody,
    response=RefreshAnswer,
)
def auth_refresh(call: PublicCall) -> func.HttpResponse:
    """POST /api/auth/api/token/refresh/ (local only): a new access token."""
    access = DevLogin(call.container.settings).refresh(call.body(RefreshBody).refresh)
    return json_response({"access": access})


@api(bp, "auth_profile", "auth/profile", "GET", access="public", local_only=True, response=Profile)
def auth_profile(call: PublicCall) -> func.HttpResponse:
    """GET /api/auth/profile/ (local only): who the bearer token names."""
    if call.caller is None:
        raise Unauthenticated("Send a bearer token in the Authorization header.")
    return json_response(profile(call.caller))
