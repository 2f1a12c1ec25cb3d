"""Bearer tokens (SPEC §4): HS256 with AUTH_JWT_SECRET, or RS256 from a JWKS (Entra ID)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import jwt

from shared.config import Settings
from shared.domain.models import Principal
from shared.errors import Unauthenticated

KNOWN_ROLES = frozenset({"user", "staff", "admin"})


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient:
        return jwt.PyJWKClient(self._settings.auth_jwks_url, cache_keys=True, lifespan=3600)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an `Authorization: Bearer` header; raises Unauthenticated."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Send a bearer token in the Authorization header.")
        try:
            claims = self._decode(token.strip())
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The bearer token has expired.") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthenticated("The bearer token is invalid.") from exc
        sub, roles = claims.get("sub"), claims.get("roles", [])
        if not isinstance(sub, str) or not sub or not isinstance(roles, list):
            raise Unauthenticated("The bearer token lacks a valid subject or roles.")
        name = claims.get("name")
        return Principal(
            sub=sub,
            roles=frozenset(r for r in roles if r in KNOWN_ROLES),
            name=name if isinstance(name, str) else None,
        )

    def _decode(self, token: str) -> dict[str, object]:
        s = self._settings
        options: Any = {"require": ["exp", "sub"]}
        audience = s.auth_jwt_audience or None
        issuer = s.auth_jwt_issuer or None
        if jwt.get_unverified_header(token).get("alg") == "RS256" and s.auth_jwks_url:
            key = self._jwks.get_signing_key_from_jwt(token).key
            return jwt.decode(token, key, ["RS256"], audience=audience, issuer=issuer, options=options)
        return jwt.decode(
            token, s.auth_jwt_secret, ["HS256"], audience=audience, issuer=issuer, options=options
        )


def mint_token(
    sub: str, roles: Sequence[str], secret: str, ttl_seconds: int = 7 * 86400, name: str | None = None
) -> str:
    """A dev token for the local host and tests (HS256)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl_seconds}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")
