"""The web client's local-only login (SPEC §4), called as the web app calls it (webapp-calls.md):
login, refresh on a 401, profile; refused with a 401 problem; 404 outside ENVIRONMENT=local."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from shared.auth import REFRESH_AUDIENCE, mint_token
from shared.config import Settings
from shared.container import Container
from tests.conftest import SECRET, bearer
from tests.helpers import installed
from tests.unit.http_client import invoke, payload

STRONG = "Zq8v1M3xT0bL7kR9wE2yN5pA4sD6fG0h"
# What the web app sends on every call (webapp-calls.md); the path's trailing slash is the host's.
APP = {"Accept": "*/*", "Content-Type": "application/json"}


def local(**values: Any) -> Settings:
    values = {"AUTH_JWT_SECRET": SECRET, "RATELIMIT_STORAGE_URI": "memory://", **values}
    return Settings(**values)  # type: ignore[call-arg]


@pytest.fixture
def app() -> Iterator[Container]:
    with installed(Container.in_memory(local(DEV_ADMIN_EMAILS=" Boss@Example.com ,ops@example.com"))) as c:
        yield c


def login(email: str, password: str = "dev-password", **extra: Any) -> Any:
    return invoke(
        "auth_login", "POST", json_body={"email": email, "password": password, **extra}, headers=APP
    )


def refresh(token: str) -> Any:
    return invoke("auth_refresh", "POST", json_body={"refresh": token}, headers=APP)


def profile(access: str) -> Any:
    return invoke("auth_profile", headers=APP | {"Authorization": f"Bearer {access}"})


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.usefixtures("app")
def test_login_gives_access_refresh_and_the_user_and_the_access_token_works() -> None:
    response = login("alice.smith@example.com")
    assert response.status_code == 200 and response.mimetype == "application/json"
    answer = payload(response)
    assert answer["user"] == {
        "id": "alice.smith@example.com",
        "email": "alice.smith@example.com",
        "first_name": "Alice",
        "last_name": "Smith",
        "is_staff": False,
    }
    assert payload(profile(answer["access"])) == answer["user"]
    access = {"Authorization": f"Bearer {answer['access']}"}
    created = invoke("tickets_create", "POST", json_body={"issue_type": "VPN"}, headers=access)
    assert created.status_code == 201 and payload(created)["user"] == "alice.smith@example.com"
    assert invoke("agent_controls_get", headers=access).status_code == 403
    assert (
        claims(answer["access"])["roles"] == []
        and claims(answer["access"])["sub"] == "alice.smith@example.com"
    )


@pytest.mark.usefixtures("app")
def test_an_email_in_dev_admin_emails_is_admin_whatever_its_case_and_spaces() -> None:
    answer = payload(login("  BOSS@example.COM "))
    assert answer["user"]["id"] == "boss@example.com" and answer["user"]["is_staff"] is True
    admin = {"Authorization": f"Bearer {answer['access']}"}
    assert invoke("agent_controls_get", headers=admin).status_code == 200
    assert payload(login("ops@example.com"))["user"]["is_staff"] is True
    assert payload(login("boss@example.com.evil"))["user"]["is_staff"] is False


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    "password", ["wrong-password", "Dev-password", "dev-password ", "dev-passwor", "dev-password-and-more"]
)
def test_a_wrong_password_is_a_401_problem_and_gives_no_token(password: str) -> None:
    response = login("alice@example.com", password)
    assert response.status_code == 401 and response.mimetype == "application/json"  # the app reads it
    body = payload(response)
    assert body["code"] == "not_authenticated" and body["status"] == 401 and body["detail"]
    assert "access" not in body and "refresh" not in body


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize("email", ["alice", "@example.com", "alice@", "a b@example.com", "a@b@c"])
def test_an_email_that_is_not_one_is_refused(email: str) -> None:
    assert login(email).status_code == 401


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"email": "a@example.com"}', APP, 400),
        (b'{"email": "a@example.com", "password": "dev-password", "remember": true}', APP, 400),
        (b'{"email": "a@example.com", "password": "dev-password"', APP, 400),
        (b'{"email": "a@example.com", "password": "\\ud800"}', APP, 400),
        (b'{"email": "a@example.com", "password": "dev-password"}', {"Content-Type": "text/plain"}, 415),
    ],
)
def test_a_bad_login_body_is_a_clear_400_or_415(body: bytes, headers: dict[str, str], status: int) -> None:
    response = invoke("auth_login", "POST", body=body, headers=headers)
    assert response.status_code == status and payload(response)["detail"]


@pytest.mark.usefixtures("app")
def test_refresh_gives_a_new_access_token_with_the_roles_the_settings_give_now(app: Container) -> None:
    answer = payload(login("boss@example.com"))
    renewed = refresh(answer["refresh"])
    assert renewed.status_code == 200 and set(payload(renewed)) == {"access"}
    assert payload(profile(payload(renewed)["access"]))["is_staff"] is True
    with installed(Container.in_memory(local())):  # no longer listed as an admin
        demoted = payload(refresh(answer["refresh"]))["access"]
        assert claims(demoted)["roles"] == [] and payload(profile(demoted))["is_staff"] is False


@pytest.mark.usefixtures("app")
def test_a_refresh_token_is_not_an_access_token_and_an_access_token_is_not_a_refresh_token() -> None:
    answer = payload(login("boss@example.com"))
    as_bearer = {"Authorization": f"Bearer {answer['refresh']}"}
    for name in ("tickets_list", "agent_controls_get"):
        assert invoke(name, headers=as_bearer).status_code == 401, name
    assert profile(answer["refresh"]).status_code == 401  # public route: anonymous, then refused
    assert refresh(answer["access"]).status_code == 401
    assert refresh(mint_token("boss@example.com", ["admin"], SECRET)).status_code == 401  # a `make token`
    assert claims(answer["refresh"])["typ"] == "refresh" and claims(answer["access"])["typ"] == "access"
    assert claims(answer["refresh"])["aud"] == REFRESH_AUDIENCE and "aud" not in claims(answer["access"])


@pytest.mark.usefixtures("app")
def test_a_forged_expired_or_strange_refresh_token_is_a_401() -> None:
    refresh_claims = {"typ": "refresh", "aud": REFRESH_AUDIENCE}
    forged = mint_token(
        "boss@example.com", [], "another-secret-0123456789abcdef0123456789", extra=refresh_claims
    )
    expired = mint_token("boss@example.com", [], SECRET, ttl_seconds=-10, extra=refresh_claims)
    not_an_email = mint_token("boss", [], SECRET, extra=refresh_claims)
    wrong_typ = mint_token("boss@example.com", [], SECRET, extra={"typ": "access", "aud": REFRESH_AUDIENCE})
    for token in (forged, expired, not_an_email, wrong_typ, "garbage", ""):
        response = refresh(token) if token else invoke("auth_refresh", "POST", json_body={}, headers=APP)
        assert response.status_code in (400, 401) and "access" not in payload(response), token
    assert refresh(forged).status_code == 401 and refresh(expired).status_code == 401


@pytest.mark.usefixtures("app")
def test_profile_needs_a_token_and_reads_any_valid_one() -> None:
    anonymous = invoke("auth_profile", headers=APP)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert invoke("auth_profile", headers=APP | {"Authorization": "Bearer nonsense"}).status_code == 401
    dev_token = payload(invoke("auth_profile", headers=APP | bearer("sam", "staff")))  # `make token`
    assert dev_token == {"id": "sam", "email": "", "first_name": "sam", "last_name": "", "is_staff": True}


def test_with_an_audience_and_issuer_configured_the_access_token_carries_them() -> None:
    settings = local(AUTH_JWT_AUDIENCE="api://resolvemeq", AUTH_JWT_ISSUER="https://issuer.example/")
    with installed(Container.in_memory(settings)):
        answer = payload(login("alice@example.com"))
        assert profile(answer["access"]).status_code == 200
        assert refresh(answer["access"]).status_code == 401
        assert (
            invoke("tickets_list", headers={"Authorization": f"Bearer {answer['refresh']}"}).status_code
            == 401
        )
        assert profile(payload(refresh(answer["refresh"]))["access"]).status_code == 200


def test_the_password_is_the_setting_and_one_too_short_for_the_client_is_refused() -> None:
    with installed(Container.in_memory(local(DEV_LOGIN_PASSWORD="correct horse"))):
        assert login("a@example.com", "correct horse").status_code == 200
        assert login("a@example.com").status_code == 401
    with pytest.raises(ValidationError, match="DEV_LOGIN_PASSWORD"):
        local(DEV_LOGIN_PASSWORD="short")


@pytest.mark.parametrize("environment", ["production", "staging", "test"])
def test_outside_local_every_login_route_is_a_404_whatever_is_sent(environment: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        ENVIRONMENT=environment,
        AUTH_JWT_SECRET=STRONG,
        AzureWebJobsStorage__accountName="acct",
        RATELIMIT_STORAGE_URI="memory://",
        DEV_ADMIN_EMAILS="boss@example.com",
    )
    with installed(Container.in_memory(settings)):
        valid = mint_token("boss@example.com", ["admin"], STRONG)
        refresh_token = mint_token(
            "boss@example.com", [], STRONG, extra={"typ": "refresh", "aud": REFRESH_AUDIENCE}
        )
        responses = [
            login("boss@example.com"),
            login("boss@example.com", "wrong"),
            invoke("auth_login", "POST", body=b"{", headers=APP),
            invoke("auth_login", "POST", body=b"x", headers={"Content-Type": "text/plain"}),
            refresh(refresh_token),
            invoke("auth_refresh", "POST", headers={}),
            invoke("auth_profile"),
            profile(valid),
        ]
        for response in responses:
            body = payload(response)
            assert response.status_code == 404 and body["code"] == "not_found", body
            assert "access" not in body and "No function matches" in body["detail"]
        # The rest of the API works there: the 404 is the login's alone.
        assert invoke("agent_controls_get", headers={"Authorization": f"Bearer {valid}"}).status_code == 200


def test_a_404_body_names_the_path_as_the_host_would() -> None:
    settings = Settings(  # type: ignore[call-arg]
        ENVIRONMENT="production", AUTH_JWT_SECRET=STRONG, AzureWebJobsStorage__accountName="acct"
    )
    with installed(Container.in_memory(settings)):
        body = json.loads(login("a@example.com").get_body())
    assert body["detail"] == "No function matches POST /api/auth_login."  # invoke's URL is /api/<name>


def test_outside_local_the_404_comes_before_the_token_is_checked_even_when_keys_cannot_be_fetched() -> None:
    settings = Settings(  # type: ignore[call-arg]
        ENVIRONMENT="production",
        AUTH_JWKS_URL="https://127.0.0.1:9/keys",  # nothing listens: a JWKS fetch would be a 503
        AUTH_JWT_ISSUER="https://issuer.example/",
        AUTH_JWT_AUDIENCE="api://resolvemeq",
        AzureWebJobsStorage__accountName="acct",
    )
    rs256 = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJhIn0.c2ln"  # {"alg":"RS256","kid":"k"}
    with installed(Container.in_memory(settings)):
        assert invoke("tickets_list", headers={"Authorization": f"Bearer {rs256}"}).status_code == 503
        assert profile(rs256).status_code == 404


def test_the_openapi_document_shows_the_dev_login_locally_only() -> None:
    from functions.ops import openapi_document

    assert "/api/auth/login/" in openapi_document("t", local=True)["paths"]
    login = {"/api/auth/login/", "/api/auth/api/token/refresh/", "/api/auth/profile/"}
    assert not login & set(openapi_document("t", local=False)["paths"])
    assert "/api/tickets/" in openapi_document("t", local=False)["paths"]
