"""What every security test shares: the identities and bad tokens, two deployments (HS256 with a
dev secret; RS256-only from a JWKS, as on Azure with Entra ID), a seeded ticket, the leak check."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.http import Operation, route_params
from shared.auth import Authenticator, JwksKeys
from shared.config import Settings
from shared.container import Container
from tests.conftest import LINK_SECRET, SECRET
from tests.e2e.conftest import stack  # noqa: F401  (the e2e fixture: one Azurite, hosts on it)
from tests.helpers import QuietHandler, installed, local_server, serving, url_of
from tests.unit.http_client import invoke

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ISSUER, AUDIENCE = "https://login.example/t", "api://resolvemeq"
OWNER, OTHER = "olive", "oscar"
# In the owner's ticket; no response to anyone who may not see the ticket may carry it.
PRIVATE = "olive-private-4f7c2a"
PROBLEM = "application/problem+json"
# Never in any response body or header: stack traces, secrets, settings, storage keys.
NEVER = [
    "Traceback",
    'File "/',
    SECRET,
    LINK_SECRET,
    "AccountKey",
    "AzureWebJobsStorage",
    "BEGIN RSA",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",  # Azurite's well-known key
]
# OData injection and other hostile strings, for path segments and query values.
INJECTED_PATHS = [
    "' or 1 eq 1",
    "%27",
    ")",
    "PartitionKey ne ''",
    "k" * 2048,
    "ünï€ødé 𝄞 \u202e",
    "1 or 1 eq 1",
    "-1",
    "99999999999999999999999",
]
IDENTITIES = ["other", "owner", "staff", "admin"]
BAD_TOKENS = ["anonymous", "expired", "wrong_signature", "alg_none", "wrong_algorithm", "wrong_audience"]


def alg_none(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass
class Deployment:
    """One way the app verifies tokens, and how to mint good and bad ones for it."""

    name: str
    settings: Settings

    def claims(self, sub: str, roles: list[str], **extra: Any) -> dict[str, Any]:
        claims = {"sub": sub, "roles": roles, "exp": int(time.time()) + 600, **extra}
        if self.name == "rs256":
            claims |= {"iss": ISSUER, "aud": AUDIENCE}
        else:
            claims |= {"aud": AUDIENCE}
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: Any = None, algorithm: str | None = None) -> str:
        algorithm = algorithm or ("RS256" if self.name == "rs256" else "HS256")
        if algorithm == "RS256":
            return jwt.encode(claims, key or KEY, algorithm="RS256", headers={"kid": "k1"})
        return jwt.encode(claims, key or SECRET, algorithm="HS256")

    def token(self, sub: str, *roles: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.sign(self.claims(sub, list(roles)))}

    def identity(self, who: str) -> dict[str, str]:
        return {
            "other": lambda: self.token(OTHER),
            "owner": lambda: self.token(OWNER),
            "staff": lambda: self.token("sam", "staff"),
            "admin": lambda: self.token("ada", "admin"),
        }[who]()

    def bad(self, kind: str) -> dict[str, str]:
        """A token every protected route refuses with 401, whatever roles it claims."""
        admin = self.claims("ada", ["admin"])
        if kind == "anonymous":
            return {}
        token = {
            "expired": lambda: self.sign({**admin, "exp": int(time.time()) - 60}),
            "wrong_signature": lambda: self.sign(
                admin, ATTACKER if self.name == "rs256" else "another-secret-0123456789abcdef0123456789"
            ),
            "alg_none": lambda: alg_none(admin),
            # RS256-only: an HS256 token, even one signed with the dev secret; HS256-only: RS256.
            "wrong_algorithm": lambda: self.sign(
                admin, algorithm="HS256" if self.name == "rs256" else "RS256"
            ),
            "wrong_audience": lambda: self.sign({**admin, "aud": "api://someone-else"}),
        }[kind]()
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def jwks_url() -> Iterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

    with serving(local_server(Handler)) as server:
        yield url_of(server, "/keys")


@pytest.fixture(params=["hs256", "rs256"])
def deployment(request: pytest.FixtureRequest, jwks_url: str) -> Deployment:
    common = {"RATELIMIT_STORAGE_URI": "memory://", "TICKET_CREATE_THROTTLE_RATE": "10000/minute"}
    if request.param == "hs256":
        settings = Settings(AUTH_JWT_SECRET=SECRET, AUTH_JWT_AUDIENCE=AUDIENCE, **common)  # type: ignore[call-arg]
    else:  # RS256 only: no secret, so no HS256 token is a token
        settings = Settings(  # type: ignore[call-arg]
            AUTH_JWKS_URL=jwks_url,
            AUTH_JWT_ISSUER=ISSUER,
            AUTH_JWT_AUDIENCE=AUDIENCE,
            AUTH_JWT_SECRET="",
            **common,
        )
        assert not settings.auth_jwt_secret
    return Deployment(request.param, settings)


@dataclass
class App:
    container: Container
    ticket_id: int  # the owner's, with PRIVATE in it


@pytest.fixture
def app(deployment: Deployment) -> Iterator[App]:
    """A fresh in-memory app for `deployment`, with the owner's ticket (id `ticket_id`)."""
    container = Container.in_memory(deployment.settings)
    if deployment.name == "rs256":
        container.auth = Authenticator(deployment.settings, JwksKeys(deployment.settings.auth_jwks_url))
    with installed(container) as c:
        created = invoke(
            "tickets_create",
            "POST",
            json_body={"issue_type": "Laptop", "description": PRIVATE},
            headers=deployment.identity("owner"),
        )
        assert created.status_code == 201, created.get_body()
        yield App(c, json.loads(created.get_body())["id"])


# A valid body per body model (a new model fails test_every_body_model_has_an_example until added),
# so an admitted caller reaches the handler's own checks (the ticket's visibility) past parsing.
BODIES: dict[str, tuple[bytes, str]] = {
    "ProcessRequest": (b"{}", "application/json"),
    "ControlsUpdate": (b'{"enabled": true, "reason": "matrix"}', "application/json"),
    "LoginBody": (b'{"email": "olive@example.com", "password": "x"}', "application/json"),
    "RefreshBody": (b'{"refresh": "x"}', "application/json"),
    "LinkAnswerForm": (b"satisfaction_score=5", "application/x-www-form-urlencoded"),
    "TicketCreate": (b'{"issue_type": "Laptop"}', "application/json"),
    # `closed`: the one change an owner may make too, so the matrix shows ownership, not the rule
    "StatusChange": (b'{"status": "closed", "reason": "matrix"}', "application/json"),
    "ResolutionFeedback": (b'{"resolution_confirmed": true}', "application/json"),
    "RollbackRequest": (b"{}", "application/json"),
}


def dev_login(op: Operation, deployment: Deployment) -> bool:
    return op.local_only and deployment.name == "rs256"


def call(
    op: Operation,
    headers: dict[str, str],
    ticket_id: int,
    *,
    route: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> func.HttpResponse:
    """`op` as the worker would call it: route values of the declared type (the seeded ticket for
    an id), a valid body for its model unless one is given, problem+json asked for."""
    values = {
        name: str(ticket_id) if kind == "integer" else "a1" for name, kind in route_params(op.route).items()
    }
    if op.body and body is None:
        body, content_type = BODIES[op.body.__name__]
    sent = {"Accept": PROBLEM, **headers}
    if content_type:
        sent["Content-Type"] = content_type
    return invoke(
        op.name, op.method, body=body, headers=sent, route={**values, **(route or {})}, params=params
    )


def assert_no_leak(
    response: func.HttpResponse, may_see_ticket: bool = False, dev_login: bool = False
) -> None:
    """No stack, secret or setting value in the body or headers; the owner's text only to who may
    see it; never a 5xx; every error a problem (with its media type asked for). The one 503 by
    design: the local-only dev login on an RS256-only deployment has no key to sign with."""
    text = response.get_body().decode("utf-8", errors="replace") + json.dumps(dict(response.headers))
    for never in NEVER:
        assert never not in text, (never, text[:500])
    if not may_see_ticket:
        assert PRIVATE not in text, text[:500]
    unsigned = dev_login and response.status_code == 503 and '"auth_unavailable"' in text
    assert response.status_code < 500 or unsigned, text[:500]
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM, (response.status_code, response.mimetype)
        problem = json.loads(response.get_body())
        assert problem["status"] == response.status_code and problem["code"], problem
