"""Typed app settings: one class, names as in SPEC §3, built once per worker.

Outside `ENVIRONMENT=local` the settings refuse what would let a stranger in: no way to
verify tokens, the published dev secret, a short or guessable secret, a JWKS without an
issuer and audience. A refusal names the setting and why, never its value.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from itertools import pairwise
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder")
LOCAL_DEV_SECRET = "local-dev-secret-change-me-0123456789abcdef"
LOCAL_LINK_SECRET = "local-dev-feedback-links-change-me-0123456789abcdef"  # ENVIRONMENT=local only
LOCAL_BASE_URL = "http://127.0.0.1:7071"  # the local host (`make dev`)
MAX_BASE_URL = 300
DEV_LOGIN_PASSWORD = "dev-password"  # the web client's local-only login (SPEC §4)
DEV_STORAGE = "UseDevelopmentStorage=true"
AZURE_HOST_MARKERS = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME")
MIN_SECRET_LENGTH = 32
AZURE_OPENAI_API_VERSION = "2024-10-21"  # GA, with structured outputs
MIN_SECRET_BITS = 72  # estimated from character frequencies; a random 32-char hex key has ~110


def on_azure_host() -> bool:
    """The App Service platform sets these; Core Tools and the local host do not."""
    return any(os.environ.get(name) for name in AZURE_HOST_MARKERS)


def _default_environment() -> str:
    return "production" if on_azure_host() else "local"


def _package_version() -> str:
    try:
        return version("resolvemeq-functions")
    except PackageNotFoundError:
        return "0.1.0"


def refused(reason: str) -> PydanticCustomError:
    """A refusal whose message is only `reason` (pydantic's own messages may quote the input)."""
    return PydanticCustomError("setting_refused", reason)


def secret_weakness(secret: str) -> str | None:
    """Why `secret` is guessable, or None. Heuristics against the usual mistakes: the dev
    value, placeholders, short keys, few distinct characters, a repeated or sequential pattern."""
    if secret == LOCAL_DEV_SECRET:
        return "is the development value published in this repository"
    if any(marker in secret.lower() for marker in PLACEHOLDER_MARKERS):
        return "is a placeholder"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    counts = Counter(secret)
    bits = -sum(n * math.log2(n / len(secret)) for n in counts.values())
    if len(counts) < 6 or bits < MIN_SECRET_BITS:
        return "has too little variety (too few distinct characters)"
    period = next(p for p in range(1, len(secret) + 1) if secret[p:] == secret[: len(secret) - p])
    if period <= len(secret) // 2:
        return "is a short pattern repeated"
    steps = [ord(b) - ord(a) for a, b in pairwise(secret)]
    if sum(abs(step) <= 1 for step in steps) * 4 >= len(steps) * 3:
        return "is a run of neighbouring characters"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, populate_by_name=True)

    # Declaration order matters: a validator sees the fields declared before it.
    environment: str = Field(default_factory=_default_environment, alias="ENVIRONMENT", validate_default=True)
    app_version: str = Field("", alias="APP_VERSION")

    # Identity-based storage, as the Functions host reads it (`AzureWebJobsStorage__*`).
    storage_account_name: str = Field("", alias="AzureWebJobsStorage__accountName")
    storage_table_service_uri: str = Field("", alias="AzureWebJobsStorage__tableServiceUri")
    storage_queue_service_uri: str = Field("", alias="AzureWebJobsStorage__queueServiceUri")
    storage_credential: str = Field("", alias="AzureWebJobsStorage__credential")
    storage_client_id: str = Field("", alias="AzureWebJobsStorage__clientId")
    storage_connection: str = Field("", alias="AzureWebJobsStorage", validate_default=True)

    auth_jwks_url: str = Field("", alias="AUTH_JWKS_URL")
    auth_jwt_issuer: str = Field("", alias="AUTH_JWT_ISSUER", validate_default=True)
    auth_jwt_audience: str = Field("", alias="AUTH_JWT_AUDIENCE", validate_default=True)
    auth_jwt_secret: str = Field("", alias="AUTH_JWT_SECRET", validate_default=True)

    # One-click answer links (shared/domain/links.py): their HMAC key, the key before a rotation
    # (its links stay valid until they expire), and the public address the links point at.
    feedback_link_secret: str = Field("", alias="FEEDBACK_LINK_SECRET", validate_default=True)
    feedback_link_secret_previous: str = Field("", alias="FEEDBACK_LINK_SECRET_PREVIOUS")
    public_base_url: str = Field("", alias="PUBLIC_BASE_URL", validate_default=True)

    sentry_dsn: str = Field("", alias="SENTRY_DSN")
    sentry_traces_sample_rate: float = Field(0.1, ge=0, le=1, alias="SENTRY_TRACES_SAMPLE_RATE")

    max_actions_per_hour: int = Field(100, ge=0, alias="MAX_AUTONOMOUS_ACTIONS_PER_HOUR")
    max_actions_per_day: int = Field(500, ge=0, alias="MAX_AUTONOMOUS_ACTIONS_PER_DAY")
    agent_throttle_rate: str = Field("50/minute", alias="AGENT_ACTIONS_THROTTLE_RATE")
    rollback_throttle_rate: str = Field("10/hour", alias="ROLLBACK_THROTTLE_RATE")
    ticket_create_throttle_rate: str = Field("30/minute", alias="TICKET_CREATE_THROTTLE_RATE")

    agent_enabled: bool = Field(True, alias="AGENT_ENABLED")
    agent_mode: Literal["autonomous", "shadow"] = Field("autonomous", alias="AGENT_MODE")
    agent_rollout_percent: int = Field(100, ge=0, le=100, alias="AGENT_ROLLOUT_PERCENT")
    confidence_high: float = Field(0.8, ge=0, le=1, alias="AGENT_CONFIDENCE_HIGH")
    confidence_medium: float = Field(0.6, ge=0, le=1, alias="AGENT_CONFIDENCE_MEDIUM")
    success_prob_auto_resolve: float = Field(0.8, ge=0, le=1, alias="AGENT_SUCCESS_PROB_AUTO_RESOLVE")

    agent_api_url: str = Field("", alias="AGENT_API_URL")
    agent_api_key: str = Field("", alias="AGENT_API_KEY")
    agent_api_timeout_seconds: float = Field(10, gt=0, alias="AGENT_API_TIMEOUT_SECONDS")

    # Which analyser: empty = the external service when AGENT_API_URL is set, else the embedded agent.
    agent_kind: Literal["", "embedded", "external", "azure_openai"] = Field("", alias="AGENT_KIND")
    azure_openai_endpoint: str = Field("", alias="AZURE_OPENAI_ENDPOINT", validate_default=True)
    azure_openai_deployment: str = Field("", alias="AZURE_OPENAI_DEPLOYMENT", validate_default=True)
    azure_openai_api_key: str = Field("", alias="AZURE_OPENAI_API_KEY")  # empty: managed identity
    azure_openai_api_version: str = Field(AZURE_OPENAI_API_VERSION, alias="AZURE_OPENAI_API_VERSION")
    # At most 60: three attempts and two waits of up to 30 s stay within the 5-minute functionTimeout.
    azure_openai_timeout_seconds: float = Field(30, gt=0, le=60, alias="AZURE_OPENAI_TIMEOUT_SECONDS")

    followup_delay_seconds: int = Field(86400, ge=0, alias="FOLLOWUP_DELAY_SECONDS")
    feedback_window_seconds: int = Field(604800, ge=0, alias="FEEDBACK_WINDOW_SECONDS")
    auto_pause_rollbacks_per_hour: int = Field(20, ge=0, alias="AUTO_PAUSE_ROLLBACKS_PER_HOUR")
    notify_webhook_url: str = Field("", alias="NOTIFY_WEBHOOK_URL")
    ratelimit_storage_uri: str = Field("", alias="RATELIMIT_STORAGE_URI")
    agent_claim_seconds: int = Field(330, ge=1, alias="AGENT_CLAIM_SECONDS")
    agent_retry_seconds: int = Field(30, ge=0, alias="AGENT_RETRY_SECONDS")
    # Local-only login (ENVIRONMENT=local; 404 elsewhere). The web client refuses passwords
    # shorter than six characters, so a shorter one could never be typed into it.
    dev_login_password: str = Field(DEV_LOGIN_PASSWORD, min_length=6, alias="DEV_LOGIN_PASSWORD")
    dev_admin_emails: str = Field("", alias="DEV_ADMIN_EMAILS")  # comma-separated, any case
    # The weekly report's rollout criteria (SPEC §8, the deployment guide): rates in percent.
    rollout_min_success_rate: float = Field(80.0, ge=0, le=100, alias="ROLLOUT_MIN_SUCCESS_RATE")
    rollout_target_success_rate: float = Field(85.0, ge=0, le=100, alias="ROLLOUT_TARGET_SUCCESS_RATE")
    rollout_min_satisfaction: float = Field(4.0, ge=0, le=5, alias="ROLLOUT_MIN_SATISFACTION")
    rollout_max_reopen_rate: float = Field(5.0, ge=0, le=100, alias="ROLLOUT_MAX_REOPEN_RATE")
    rollout_max_rollback_rate: float = Field(2.0, ge=0, le=100, alias="ROLLOUT_MAX_ROLLBACK_RATE")
    rollout_max_daily_rollback_rate: float = Field(1.0, ge=0, le=100, alias="ROLLOUT_MAX_DAILY_ROLLBACK_RATE")
    rollout_min_processing_rate: float = Field(30.0, ge=0, le=100, alias="ROLLOUT_MIN_PROCESSING_RATE")
    rollout_max_processing_rate: float = Field(50.0, ge=0, le=100, alias="ROLLOUT_MAX_PROCESSING_RATE")
    rollout_min_avg_confidence: float = Field(0.7, ge=0, le=1, alias="ROLLOUT_MIN_AVG_CONFIDENCE")

    @field_validator("agent_throttle_rate", "rollback_throttle_rate", "ticket_create_throttle_rate")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)
        return value

    @field_validator("environment")
    @classmethod
    def _not_local_on_azure(cls, environment: str) -> str:
        environment = environment.strip() or _default_environment()
        if environment == "local" and on_azure_host():
            raise refused(
                "'local' on an Azure host (WEBSITE_SITE_NAME or WEBSITE_INSTANCE_ID is set) would accept "
                "the published dev secret and dev login; leave ENVIRONMENT unset or name the environment"
            )
        return environment

    @field_validator("storage_connection")
    @classmethod
    def _storage_named(cls, connection: str, info: ValidationInfo) -> str:
        if connection.strip():
            return connection
        if any(info.data.get(f) for f in ("storage_account_name", "storage_table_service_uri")):
            return ""  # identity-based: endpoints and credential come from AzureWebJobsStorage__*
        if info.data.get("environment") == "local":
            return DEV_STORAGE
        raise refused("not set; set a connection string or AzureWebJobsStorage__accountName (identity)")

    @field_validator("auth_jwt_issuer", "auth_jwt_audience")
    @classmethod
    def _required_with_jwks(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("auth_jwks_url") and not value.strip():
            raise refused(
                "required with AUTH_JWKS_URL: without it tokens of any tenant or application "
                "signed by the same keys would be accepted"
            )
        return value.strip()

    @field_validator("auth_jwks_url")
    @classmethod
    def _jwks_over_tls(cls, url: str, info: ValidationInfo) -> str:
        url = url.strip()
        if url and info.data.get("environment") != "local" and not url.startswith("https://"):
            raise refused("must be an https:// URL outside ENVIRONMENT=local")
        return url

    @field_validator("auth_jwt_secret")
    @classmethod
    def _real_secret_outside_local(cls, secret: str, info: ValidationInfo) -> str:
        """Empty means unset: the dev value locally, RS256 only when a JWKS is configured."""
        environment = info.data.get("environment")  # absent when refused itself: be strict
        jwks = bool(info.data.get("auth_jwks_url"))
        if not secret:
            if jwks:
                return ""
            if environment == "local":
                return LOCAL_DEV_SECRET
            raise refused(
                f"not set; set a random key of {MIN_SECRET_LENGTH}+ characters, or AUTH_JWKS_URL "
                f"(ENVIRONMENT={environment} is not 'local')"
            )
        weakness = None if environment == "local" else secret_weakness(secret)
        if weakness:
            raise refused(
                f"{weakness}; set a random key of {MIN_SECRET_LENGTH}+ characters "
                f"(ENVIRONMENT={environment} is not 'local')"
            )
        return secret

    @field_validator("feedback_link_secret")
    @classmethod
    def _real_link_secret_outside_local(cls, secret: str, info: ValidationInfo) -> str:
        """Whoever holds this key can answer for any owner: the same bar as AUTH_JWT_SECRET, and a
        key of its own (a token key that leaks must not also sign answers)."""
        environment = info.data.get("environment")
        if environment == "local":
            return secret or LOCAL_LINK_SECRET
        if not secret:
            raise refused(
                f"not set; set a random key of {MIN_SECRET_LENGTH}+ characters "
                f"(ENVIRONMENT={environment} is not 'local')"
            )
        weakness = secret_weakness(secret)
        if weakness is None and secret == info.data.get("auth_jwt_secret"):
            weakness = "is the same as AUTH_JWT_SECRET"
        if weakness:
            raise refused(
                f"{weakness}; set a random key of {MIN_SECRET_LENGTH}+ characters "
                f"(ENVIRONMENT={environment} is not 'local')"
            )
        return secret

    @field_validator("feedback_link_secret_previous")
    @classmethod
    def _previous_link_secret(cls, secret: str, info: ValidationInfo) -> str:
        if not secret or info.data.get("environment") == "local":
            return secret
        weakness = secret_weakness(secret)
        if weakness:
            raise refused(f"{weakness}; leave it empty, or set the key FEEDBACK_LINK_SECRET had before")
        return secret

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, url: str, info: ValidationInfo) -> str:
        """Where one-click links point: the app's public address (no path beyond a prefix)."""
        url = url.strip().rstrip("/")
        environment = info.data.get("environment")
        if not url:
            if environment == "local":
                return LOCAL_BASE_URL
            raise refused(
                "not set; set the app's public https:// address, which one-click feedback links "
                f"point at (ENVIRONMENT={environment} is not 'local')"
            )
        # ASCII and short: a link is stored in the notification whole (at most 1,000 printable
        # ASCII characters), and the token and its path add about 130.
        if len(url) > MAX_BASE_URL or not re.fullmatch(
            r"https?://[\w.-]+(:\d+)?(/[\x21-\x22\x24-\x3e\x40-\x7e]*)?", url, re.ASCII
        ):
            raise refused(
                f"must be an absolute http(s) URL of at most {MAX_BASE_URL} ASCII characters, "
                "without a query or fragment"
            )
        if environment != "local" and not url.startswith("https://"):
            raise refused("must be an https:// URL outside ENVIRONMENT=local")
        return url

    @field_validator("azure_openai_endpoint")
    @classmethod
    def _azure_openai_endpoint(cls, url: str, info: ValidationInfo) -> str:
        """The resource's address: required by AGENT_KIND=azure_openai, https:// outside local,
        no query (a key belongs in AZURE_OPENAI_API_KEY, which is kept out of logs and Sentry)."""
        url = url.strip().rstrip("/")
        if info.data.get("agent_kind") != "azure_openai":
            return url
        if not url:
            raise refused("required with AGENT_KIND=azure_openai: the resource's https:// endpoint")
        if not re.fullmatch(r"https?://[\w.-]+(:\d+)?(/[\w.~-]*)*", url, re.ASCII):
            raise refused("must be an absolute http(s) URL without a query or fragment")
        if info.data.get("environment") != "local" and not url.startswith("https://"):
            raise refused("must be an https:// URL outside ENVIRONMENT=local")
        return url

    @field_validator("azure_openai_deployment")
    @classmethod
    def _azure_openai_deployment(cls, name: str, info: ValidationInfo) -> str:
        name = name.strip()
        if info.data.get("agent_kind") != "azure_openai":
            return name
        if not name:
            raise refused("required with AGENT_KIND=azure_openai: the model deployment's name")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
            raise refused("must be a deployment name: letters, digits, '.', '_', '-' (at most 64)")
        return name

    @field_validator("azure_openai_api_version")
    @classmethod
    def _azure_openai_api_version(cls, value: str) -> str:
        value = value.strip() or AZURE_OPENAI_API_VERSION
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,40}", value):
            raise refused("must be an API version such as 2024-10-21")
        return value

    @field_validator("agent_kind")
    @classmethod
    def _external_needs_url(cls, kind: str, info: ValidationInfo) -> str:
        if kind == "external" and not info.data.get("agent_api_url"):
            raise refused("'external' needs AGENT_API_URL")
        return kind

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if not self.app_version:
            self.app_version = _package_version()
        if self.confidence_medium > self.confidence_high:
            raise ValueError("AGENT_CONFIDENCE_MEDIUM must not exceed AGENT_CONFIDENCE_HIGH")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


def _setting(loc: tuple[int | str, ...]) -> str:
    """The setting's name: pydantic names a defaulted field by attribute, a given one by alias."""
    if not loc:
        return "settings"
    field = Settings.model_fields.get(str(loc[0]))
    return (field.alias if field and field.alias else str(loc[0])) + "".join(f".{p}" for p in loc[1:])


def problems(exc: ValidationError) -> list[str]:
    """`SETTING: reason` for each refused setting; never the value (pydantic's own rendering
    of the error quotes the input)."""
    return [f"{_setting(e['loc'])}: {e['msg']}" for e in exc.errors()]


def setting_names(exc: ValidationError) -> list[str]:
    return sorted({_setting(e["loc"][:1]) for e in exc.errors() if e["loc"]}) or ["settings"]
