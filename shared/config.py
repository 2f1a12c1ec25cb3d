"""Typed app settings: one class, names as in SPEC §3, built once per worker."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder")
LOCAL_DEV_SECRET = "local-dev-secret-change-me-0123456789abcdef"


def _package_version() -> str:
    try:
        return version("resolvemeq-functions")
    except PackageNotFoundError:
        return "0.1.0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, populate_by_name=True)

    storage_connection: str = Field("UseDevelopmentStorage=true", alias="AzureWebJobsStorage")
    environment: str = Field("local", alias="ENVIRONMENT")
    app_version: str = Field("", alias="APP_VERSION")

    auth_jwt_secret: str = Field(LOCAL_DEV_SECRET, alias="AUTH_JWT_SECRET")
    auth_jwt_issuer: str = Field("", alias="AUTH_JWT_ISSUER")
    auth_jwt_audience: str = Field("", alias="AUTH_JWT_AUDIENCE")
    auth_jwks_url: str = Field("", alias="AUTH_JWKS_URL")

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

    followup_delay_seconds: int = Field(86400, ge=0, alias="FOLLOWUP_DELAY_SECONDS")
    feedback_window_seconds: int = Field(604800, ge=0, alias="FEEDBACK_WINDOW_SECONDS")
    auto_pause_rollbacks_per_hour: int = Field(20, ge=0, alias="AUTO_PAUSE_ROLLBACKS_PER_HOUR")
    notify_webhook_url: str = Field("", alias="NOTIFY_WEBHOOK_URL")
    ratelimit_storage_uri: str = Field("", alias="RATELIMIT_STORAGE_URI")
    agent_claim_seconds: int = Field(330, ge=1, alias="AGENT_CLAIM_SECONDS")
    agent_retry_seconds: int = Field(30, ge=0, alias="AGENT_RETRY_SECONDS")

    @field_validator("agent_throttle_rate", "rollback_throttle_rate", "ticket_create_throttle_rate")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)
        return value

    @field_validator("auth_jwt_secret")
    @classmethod
    def _refuse_placeholders_outside_local(cls, secret: str, info: ValidationInfo) -> str:
        environment = info.data.get("environment", "local")
        if environment == "local":
            return secret
        if len(secret) < 32 or any(marker in secret.lower() for marker in PLACEHOLDER_MARKERS):
            raise ValueError(
                "a placeholder or shorter than 32 characters; "
                f"set a real secret (ENVIRONMENT={environment!r} is not 'local')"
            )
        return secret

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if not self.app_version:
            self.app_version = _package_version()
        if self.confidence_medium > self.confidence_high:
            raise ValueError("AGENT_CONFIDENCE_MEDIUM must not exceed AGENT_CONFIDENCE_HIGH")
        return self

    @property
    def is_local(self) -> bool:
        return self.environment == "local"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]
