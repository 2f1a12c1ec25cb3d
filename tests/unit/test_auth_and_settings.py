"""Bearer tokens (HS256 and RS256 via JWKS), settings validation and the `check` command."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from shared.auth import Authenticator, mint_token
from shared.config import Settings
from shared.errors import Unauthenticated
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys"
    server.shutdown()


def rs256(claims: dict) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, KEY, algorithm="RS256", headers={"kid": "k1"})


def test_rs256_tokens_from_a_jwks_are_accepted_with_issuer_and_audience(jwks_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET=SECRET,
        AUTH_JWKS_URL=jwks_url,
        AUTH_JWT_ISSUER="https://login.example/t",
        AUTH_JWT_AUDIENCE="api://resolvemeq",
    )
    auth = Authenticator(settings)
    good = {
        "sub": "entra-user",
        "roles": ["staff"],
        "iss": "https://login.example/t",
        "aud": "api://resolvemeq",
    }
    principal = auth.authenticate(f"Bearer {rs256(good)}")
    assert principal.sub == "entra-user" and principal.is_staff and not principal.is_admin
    for bad in ({**good, "aud": "api://other"}, {**good, "iss": "https://evil"}):
        with pytest.raises(Unauthenticated):
            auth.authenticate(f"Bearer {rs256(bad)}")


def test_tokens_need_exp_sub_and_a_list_of_roles() -> None:
    auth = Authenticator(Settings(AUTH_JWT_SECRET=SECRET))  # type: ignore[call-arg]
    assert auth.authenticate("Bearer " + mint_token("a", ["admin", "wizard"], SECRET)).roles == {"admin"}
    for claims in (
        {"sub": "a", "roles": []},
        {"exp": time.time() + 60, "roles": []},
        {"sub": "a", "roles": "admin", "exp": time.time() + 60},
    ):
        with pytest.raises(Unauthenticated):
            auth.authenticate("Bearer " + jwt.encode(claims, SECRET, algorithm="HS256"))
    none_alg = jwt.encode({"sub": "a", "roles": ["admin"], "exp": time.time() + 60}, None, algorithm="none")
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"Bearer {none_alg}")


@pytest.mark.parametrize(
    "secret", ["local-dev-secret-change-me-0123456789abcdef", "short", "placeholder" * 4]
)
def test_placeholder_secrets_are_refused_outside_local(secret: str) -> None:
    with pytest.raises(ValidationError):
        Settings(ENVIRONMENT="production", AUTH_JWT_SECRET=secret)  # type: ignore[call-arg]
    assert Settings(ENVIRONMENT="local", AUTH_JWT_SECRET=secret)  # type: ignore[call-arg]


def test_bad_settings_are_refused_with_their_names() -> None:
    with pytest.raises(ValidationError) as bad:
        Settings(AGENT_ACTIONS_THROTTLE_RATE="lots", AGENT_ROLLOUT_PERCENT=101, AGENT_MODE="yolo")  # type: ignore[call-arg]
    names = {e["loc"][0] for e in bad.value.errors()}
    assert names == {"AGENT_ACTIONS_THROTTLE_RATE", "AGENT_ROLLOUT_PERCENT", "AGENT_MODE"}


def test_check_command_names_each_problem() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ENVIRONMENT": "production",
        "AUTH_JWT_SECRET": "changeme",
        "AGENT_ROLLOUT_PERCENT": "150",
    }
    result = subprocess.run(
        [sys.executable, "-m", "manage", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "AGENT_ROLLOUT_PERCENT" in result.stdout and "AUTH_JWT_SECRET" in result.stdout


def test_check_command_reports_unreachable_storage() -> None:
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    env = {"PATH": "/usr/bin:/bin", "AzureWebJobsStorage": conn, "ENVIRONMENT": "local"}
    result = subprocess.run(
        [sys.executable, "-m", "manage", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "settings: ok" in result.stdout and "storage:" in result.stdout
