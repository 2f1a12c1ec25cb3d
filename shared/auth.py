"""Bearer tokens (SPEC §4): HS256 with AUTH_JWT_SECRET, or RS256 from a JWKS (Entra ID).

Each algorithm is accepted only when its key is configured: an empty AUTH_JWT_SECRET turns
HS256 off (a token "signed" with the empty key is not a token), no AUTH_JWKS_URL turns RS256
off, and anything else (`none`, HS512, RS256 with a secret...) is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import jwt

from shared.config import Settings
from shared.domain.models import Principal
from shared.errors import AuthUnavailable, Unauthenticated

KNOWN_ROLES = frozenset({"user", "staff", "admin"})
log = logging.getLogger("resolvemeq.auth")


class JwksKeys:
    """The signing keys of a JWKS, by `kid`, refreshed every `lifespan` seconds and on an
    unknown `kid`, but never more often than every `min_interval` seconds: random kids in
    forged tokens cannot make us hammer the JWKS endpoint. When a refresh fails, the keys
    fetched last stay in use until one succeeds (an identity provider outage does not lock
    everyone out); with no keys at all, tokens cannot be checked (503, not 401)."""

    def __init__(
        self,
        url: str,
        lifespan: float = 600,
        min_interval: float = 10,
        timeout: float = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=timeout)
        self._lifespan, self._min_interval, self._clock = lifespan, min_interval, clock
        self._keys: dict[str, Any] | None = None
        self._fetched_at = self._tried_at = -float("inf")
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> Any:
        """The public key named `kid`; raises Unauthenticated (unknown kid) or AuthUnavailable."""
        keys = self._keys
        if keys is None or self._clock() - self._fetched_at >= self._lifespan or kid not in keys:
            keys = self._refresh(stale=keys)
        if keys is None:
            raise AuthUnavailable("The keys that verify sign-in tokens cannot be fetched; try again shortly.")
        if kid not in keys:
            raise Unauthenticated("The bearer token is signed with an unknown key.")
        return keys[kid]

    def _refresh(self, stale: dict[str, Any] | None) -> dict[str, Any] | None:
        with self._lock:
            if self._keys is not stale:  # another thread refreshed while we waited
                return self._keys
            if self._clock() - self._tried_at < self._min_interval:
                return self._keys
            self._tried_at = self._clock()
            try:
                jwk_set = self._client.get_jwk_set()
            except (jwt.PyJWTError, ValueError) as exc:
                log.warning("JWKS refresh failed (%s); the keys fetched last stay in use", type(exc).__name__)
                return self._keys
            self._keys = {k.key_id: k.key for k in jwk_set.keys if k.key_id}
            self._fetched_at = self._clock()
            return self._keys


class Authenticator:
    def __init__(self, settings: Settings, jwks: JwksKeys | None = None) -> None:
        self._settings = settings
        if jwks is not None:
            self._jwks = jwks

    @cached_property
    def _jwks(self) -> JwksKeys:
        return JwksKeys(self._settings.auth_jwks_url)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an `Authorization: Bearer` header; raises Unauthenticated."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Send a bearer token in the Authorization header.")
        try:
            claims = self._decode(token.strip())
        except Unauthenticated:
            raise
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
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg == "RS256" and s.auth_jwks_url:
            kid = header.get("kid")
            key = self._jwks.key(kid if isinstance(kid, str) else None)
            return jwt.decode(token, key, ["RS256"], audience=audience, issuer=issuer, options=options)
        if alg == "HS256" and s.auth_jwt_secret:
            return jwt.decode(
                token, s.auth_jwt_secret, ["HS256"], audience=audience, issuer=issuer, options=options
            )
        raise Unauthenticated("The bearer token's signing algorithm is not accepted here.")


def mint_token(
    sub: str, roles: Sequence[str], secret: str, ttl_seconds: int = 7 * 86400, name: str | None = None
) -> str:
    """A dev token for the local host and tests (HS256)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl_seconds}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")
