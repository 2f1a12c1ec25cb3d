"""Bearer tokens (HS256 and RS256 via JWKS), settings validation and the `check` command."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from shared.auth import Authenticator, JwksKeys, mint_token
from shared.config import Settings, problems
from shared.errors import AuthUnavailable, Unauthenticated
from tests.conftest import SECRET
from tests.helpers import QuietHandler, local_server, manage_check, serving, url_of

ROOT = Path(__file__).resolve().parents[2]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ISSUER, AUDIENCE = "https://login.example/t", "api://resolvemeq"


def with_jwks(jwks_url: str, **env: str) -> Settings:
    """Settings that trust the RS256 keys at `jwks_url` for ISSUER and AUDIENCE."""
    return Settings(AUTH_JWKS_URL=jwks_url, AUTH_JWT_ISSUER=ISSUER, AUTH_JWT_AUDIENCE=AUDIENCE, **env)  # type: ignore[call-arg]


def entra_claims(sub: str, *roles: str) -> dict[str, object]:
    return {"sub": sub, "roles": list(roles), "iss": ISSUER, "aud": AUDIENCE}


@pytest.fixture(autouse=True)
def storage_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside local the storage must be named too; these tests are about the rest."""
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")


@pytest.fixture(scope="module")
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


def rs256(claims: dict) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, KEY, algorithm="RS256", headers={"kid": "k1"})


def test_rs256_tokens_from_a_jwks_are_accepted_with_issuer_and_audience(jwks_url: str) -> None:
    auth = Authenticator(with_jwks(jwks_url, AUTH_JWT_SECRET=SECRET))
    good = entra_claims("entra-user", "staff")
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
    env = {"ENVIRONMENT": "production", "AUTH_JWT_SECRET": "changeme", "AGENT_ROLLOUT_PERCENT": "150"}
    result = manage_check(env)
    assert result.returncode == 1
    assert "AGENT_ROLLOUT_PERCENT" in result.stdout and "AUTH_JWT_SECRET" in result.stdout


def test_check_command_reports_unreachable_storage() -> None:
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    result = manage_check({"AzureWebJobsStorage": conn, "ENVIRONMENT": "local"})
    assert result.returncode == 1 and "settings: ok" in result.stdout and "storage:" in result.stdout


# -- a careless deploy (issue 6, point 3) ------------------------------------------------------

AZURE_LIKE = {"WEBSITE_SITE_NAME": "resolvemeq-prod", "WEBSITE_INSTANCE_ID": "0123abcd"}
STRONG = "Zq8v1M3xT0bL7kR9wE2yN5pA4sD6fG0h"


@pytest.fixture
def azure_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The App Service environment: no local.settings.json is read, ENVIRONMENT is not set."""
    for name in ("ENVIRONMENT", "AUTH_JWT_SECRET", "AUTH_JWKS_URL", "AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBSITE_SITE_NAME", AZURE_LIKE["WEBSITE_SITE_NAME"])
    yield monkeypatch


def refused_settings(**values: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as refused:
        Settings(**values)  # type: ignore[arg-type]
    return dict(line.split(": ", 1) for line in problems(refused.value))


def test_an_azure_host_is_production_by_default_and_has_no_usable_default_secret(
    azure_host: pytest.MonkeyPatch,
) -> None:
    assert "not set" in refused_settings()["AUTH_JWT_SECRET"]
    assert Settings(AUTH_JWT_SECRET=STRONG).environment == "production"  # type: ignore[call-arg]
    azure_host.delenv("WEBSITE_SITE_NAME")
    azure_host.setenv("WEBSITE_INSTANCE_ID", AZURE_LIKE["WEBSITE_INSTANCE_ID"])
    assert "AUTH_JWT_SECRET" in refused_settings()


def test_local_is_refused_on_an_azure_host_as_it_would_accept_the_dev_secret(
    azure_host: pytest.MonkeyPatch,
) -> None:
    assert "Azure host" in refused_settings(ENVIRONMENT="local")["ENVIRONMENT"]


def test_outside_local_storage_must_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    problems = refused_settings(ENVIRONMENT="production", AUTH_JWT_SECRET=STRONG)
    assert set(problems) == {"AzureWebJobsStorage"}
    identity = Settings(  # type: ignore[call-arg]
        ENVIRONMENT="production", AUTH_JWT_SECRET=STRONG, AzureWebJobsStorage__accountName="acct"
    )
    assert identity.storage_connection == "" and identity.storage_account_name == "acct"
    assert Settings().storage_connection == "UseDevelopmentStorage=true"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("local-dev-secret-change-me-0123456789abcdef", "development value"),
        ("x7Kq2", "shorter than 32"),
        ("a" * 64, "variety"),
        ("ab" * 32, "variety"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaabcdefghijkl", "variety"),
        ("0123456789abcdef" * 2, "repeated"),
        ("Zq8v1M3xT0bL7kR9" * 3, "repeated"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "neighbouring"),
        ("my-placeholder-for-the-real-jwt-key", "placeholder"),
    ],
)
def test_guessable_secrets_are_refused_outside_local_without_echoing_them(secret: str, why: str) -> None:
    message = refused_settings(ENVIRONMENT="staging", AUTH_JWT_SECRET=secret)["AUTH_JWT_SECRET"]
    assert why in message and secret not in message


def test_a_random_secret_is_accepted_outside_local() -> None:
    for secret in (STRONG, secrets.token_hex(16), secrets.token_urlsafe(32), str(uuid.uuid4())):
        assert Settings(ENVIRONMENT="production", AUTH_JWT_SECRET=secret).auth_jwt_secret == secret  # type: ignore[call-arg]


def test_a_jwks_needs_an_issuer_and_an_audience_and_tls_outside_local() -> None:
    problems = refused_settings(AUTH_JWKS_URL="https://login.example/keys")
    assert set(problems) == {"AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"}
    problems = refused_settings(
        ENVIRONMENT="production",
        AUTH_JWKS_URL="http://login.example/keys",
        AUTH_JWT_ISSUER=ISSUER,
        AUTH_JWT_AUDIENCE=AUDIENCE,
    )
    assert "https" in problems["AUTH_JWKS_URL"]


def hs256_by_hand(claims: dict, key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_an_empty_secret_with_a_jwks_means_rs256_only(jwks_url: str) -> None:
    settings = with_jwks(
        jwks_url.replace("http://", "https://"), ENVIRONMENT="production", AUTH_JWT_SECRET=""
    )
    assert settings.auth_jwt_secret == ""
    auth = Authenticator(with_jwks(jwks_url, AUTH_JWT_SECRET=""))
    claims = {**entra_claims("mallory", "admin"), "exp": int(time.time()) + 60}
    assert auth.authenticate(f"Bearer {rs256(claims)}").sub == "mallory"
    forged = [
        hs256_by_hand(claims, b""),  # PyJWT refuses to sign with an empty key; an attacker does not
        jwt.encode(claims, "local-dev-secret-change-me-0123456789abcdef", algorithm="HS256"),
    ]
    forged.append(jwt.encode(claims, None, algorithm="none"))
    forged.append(jwt.encode(claims, STRONG * 2, algorithm="HS512"))
    for token in forged:
        with pytest.raises(Unauthenticated):
            auth.authenticate(f"Bearer {token}")


def test_without_a_jwks_rs256_tokens_are_refused() -> None:
    auth = Authenticator(Settings(AUTH_JWT_SECRET=SECRET))  # type: ignore[call-arg]
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"Bearer {rs256({'sub': 'mallory', 'roles': ['admin']})}")


def test_through_the_app_a_refused_configuration_answers_503_and_is_logged_once(
    azure_host: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.config import LOCAL_DEV_SECRET
    from shared.container import use_container
    from tests.unit.http_client import invoke, payload

    forged = {
        "Authorization": "Bearer " + mint_token("mallory", ["admin"], LOCAL_DEV_SECRET),
        "Accept": "application/problem+json",
    }
    use_container(None)
    try:
        with caplog.at_level("ERROR"):
            for name in ("tickets_list", "agent_controls_get", "ops_health", "tickets_list"):
                response = invoke(name, headers=forged)
                assert response.status_code == 503 and response.mimetype == "application/problem+json"
                body = payload(response)
                assert body["code"] == "service_misconfigured" and "AUTH_JWT_SECRET" in body["detail"]
                assert LOCAL_DEV_SECRET not in response.get_body().decode()
        refusals = [r for r in caplog.records if "settings refused" in r.getMessage()]
        assert len(refusals) == 1 and "AUTH_JWT_SECRET" in refusals[0].getMessage()
        assert LOCAL_DEV_SECRET not in caplog.text
    finally:
        azure_host.undo()
        use_container(None)


def test_with_a_real_secret_on_azure_a_dev_secret_token_is_401(azure_host: pytest.MonkeyPatch) -> None:
    from shared.config import LOCAL_DEV_SECRET
    from shared.container import Container, use_container
    from tests.unit.http_client import invoke

    azure_host.setenv("AUTH_JWT_SECRET", STRONG)
    use_container(Container.in_memory(Settings(RATELIMIT_STORAGE_URI="memory://")))  # type: ignore[call-arg]
    try:
        forged = {"Authorization": "Bearer " + mint_token("mallory", ["admin"], LOCAL_DEV_SECRET)}
        assert invoke("agent_controls_get", headers=forged).status_code == 401
        real = {"Authorization": "Bearer " + mint_token("ada", ["admin"], STRONG)}
        assert invoke("agent_controls_get", headers=real).status_code == 200
    finally:
        use_container(None)


def test_check_fails_on_an_azure_like_host_naming_the_secret_and_never_printing_it() -> None:
    """On an Azure host local.settings.json is not read, even when one lies in the tree."""
    result = manage_check({"WEBSITE_SITE_NAME": "resolvemeq-prod"})
    assert result.returncode == 1
    assert "AUTH_JWT_SECRET: not set" in result.stdout and "AzureWebJobsStorage: not set" in result.stdout
    from shared.config import LOCAL_DEV_SECRET

    result = manage_check({"WEBSITE_SITE_NAME": "resolvemeq-prod", "AUTH_JWT_SECRET": LOCAL_DEV_SECRET})
    assert result.returncode == 1 and "AUTH_JWT_SECRET: is the development value" in result.stdout
    assert LOCAL_DEV_SECRET not in result.stdout + result.stderr


# -- JWKS keys refresh (issue 6, point 12) -----------------------------------------------------


class RotatingJwks:
    """A JWKS endpoint whose key set the test changes, counting the fetches it serves."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.down = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                jwks = [
                    {
                        **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
                        "kid": kid,
                        "use": "sig",
                    }
                    for kid, k in outer.keys.items()
                ]
                body = json.dumps({"keys": jwks}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/keys"

    def token(self, kid: str, key: rsa.RSAPrivateKey | None = None) -> str:
        claims = {"sub": "u", "roles": [], "iss": "https://iss", "aud": "api", "exp": int(time.time()) + 60}
        return "Bearer " + jwt.encode(claims, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def rotating() -> Iterator[RotatingJwks]:
    server = RotatingJwks()
    yield server
    server.server.shutdown()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jwks_auth(server: RotatingJwks, clock: Clock) -> Authenticator:
    settings = Settings(  # type: ignore[call-arg]
        AUTH_JWT_SECRET="", AUTH_JWKS_URL=server.url, AUTH_JWT_ISSUER="https://iss", AUTH_JWT_AUDIENCE="api"
    )
    return Authenticator(settings, JwksKeys(server.url, lifespan=600, min_interval=10, clock=clock))


def test_a_new_kid_is_fetched_once_and_random_kids_cannot_hammer_the_jwks(rotating: RotatingJwks) -> None:
    clock = Clock()
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    rotating.keys = {"old": old}
    auth = jwks_auth(rotating, clock)
    auth.authenticate(rotating.token("old"))
    assert rotating.fetches == 1
    clock.now += 11
    rotating.keys = {"old": old, "new": new}  # the provider publishes a new key
    auth.authenticate(rotating.token("new"))
    assert rotating.fetches == 2
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(50):
        with pytest.raises(Unauthenticated):
            auth.authenticate(rotating.token(uuid.uuid4().hex, attacker))
    assert rotating.fetches == 2  # within 10 s of the last fetch: none
    clock.now += 11
    for _ in range(50):
        with pytest.raises(Unauthenticated):
            auth.authenticate(rotating.token(uuid.uuid4().hex, attacker))
    assert rotating.fetches == 3  # one per 10 s at most
    auth.authenticate(rotating.token("old"))  # known keys never wait for a fetch


def test_a_removed_key_stops_working_after_the_lifespan(rotating: RotatingJwks) -> None:
    clock = Clock()
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    rotating.keys = {"old": old, "new": new}
    auth = jwks_auth(rotating, clock)
    auth.authenticate(rotating.token("old"))
    rotating.keys = {"new": new}  # revoked at the provider
    clock.now += 300
    auth.authenticate(rotating.token("old", old))  # still cached
    clock.now += 301
    with pytest.raises(Unauthenticated):
        auth.authenticate(rotating.token("old", old))
    auth.authenticate(rotating.token("new"))
    assert rotating.fetches == 2


def test_a_jwks_outage_keeps_the_last_keys_and_without_any_answers_503(rotating: RotatingJwks) -> None:
    clock = Clock()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rotating.keys = {"k": key}
    rotating.down = True
    auth = jwks_auth(rotating, clock)
    with pytest.raises(AuthUnavailable):
        auth.authenticate(rotating.token("k"))
    rotating.down = False
    clock.now += 11
    auth.authenticate(rotating.token("k"))
    rotating.down = True
    clock.now += 601
    auth.authenticate(rotating.token("k"))  # the refresh failed: the last keys stay in use
    assert rotating.fetches == 3


def test_every_setting_is_documented_in_the_sample_and_the_readme() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    readme = (ROOT / "README.md").read_text()
    for field in Settings.model_fields.values():
        name = str(field.alias)
        assert name in sample, f"{name} is missing from local.settings.sample.json"
        short = "__" + name.split("__")[1] if "__" in name else name
        assert f"`{name}`" in readme or f"`{short}`" in readme, f"{name} is missing from the README"
