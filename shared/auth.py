"""Bearer tokens (SPEC §4): HS256 with AUTH_JWT_SECRET, or RS256 from a JWKS (Entra ID).

Each algorithm is accepted only when its key is configured: an empty AUTH_JWT_SECRET turns
HS256 off (a token "signed" with the empty key is not a token), no AUTH_JWKS_URL turns RS256
off, and anything else (`none`, HS512, RS256 with a secret...) is refused.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

import jwt

from shared.config import Settings
from shared.domain.actions import reserved_actor
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
        if claims.get("typ") == REFRESH_TYPE:  # its audience refuses it already; said twice on purpose
            raise Unauthenticated("A refresh token is not an access token.")
        sub, roles = claims.get("sub"), claims.get("roles", [])
        if not isinstance(sub, str) or not sub or not isinstance(roles, list):
            raise Unauthenticated("The bearer token lacks a valid subject or roles.")
        if reserved_actor(sub):
            raise Unauthenticated("The bearer token's subject is reserved for the agent and the system.")
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
    sub: str,
    roles: Sequence[str],
    secret: str,
    ttl_seconds: int = 7 * 86400,
    name: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """A dev token for the local host and tests (HS256)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl_seconds}
    if name:
        claims["name"] = name
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")


# The web client's local-only login (SPEC §4). Its tokens are dev tokens (HS256 with the
# secret the Authenticator checks); a refresh token has its own `typ` and audience, so neither
# kind is accepted where the other is expected.
ACCESS_TYPE, REFRESH_TYPE = "access", "refresh"
REFRESH_AUDIENCE = "resolvemeq-dev-refresh"
ACCESS_TTL_SECONDS = 3600  # the web client refreshes on a 401
REFRESH_TTL_SECONDS = 7 * 86400
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class DevLogin:
    """Log in with any e-mail and the shared dev password, and refresh. Its routes exist in
    ENVIRONMENT=local only (`@api(..., local_only=True)`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def login(self, email: str, password: str) -> tuple[str, str, Principal]:
        """(access, refresh, who) for the dev password; raises Unauthenticated otherwise."""
        expected = self._settings.dev_login_password.encode()
        email = email.strip().lower()
        if not hmac.compare_digest(password.encode(), expected) or not EMAIL.fullmatch(email):
            raise Unauthenticated("The e-mail or password is not correct.")
        who = self._principal(email)
        return self._access(who), self._refresh(who), who

    def refresh(self, token: str) -> str:
        """A new access token for a valid refresh token (roles as the settings say now)."""
        try:
            claims = jwt.decode(
                token,
                self._secret(),
                ["HS256"],
                audience=REFRESH_AUDIENCE,
                options={"require": ["exp", "sub", "aud", "typ"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The refresh token has expired; log in again.") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthenticated("The refresh token is invalid; log in again.") from exc
        sub = claims.get("sub")
        if claims.get("typ") != REFRESH_TYPE or not isinstance(sub, str) or not EMAIL.fullmatch(sub):
            raise Unauthenticated("The refresh token is invalid; log in again.")
        return self._access(self._principal(sub))

    def _principal(self, email: str) -> Principal:
        admins = {e.strip().lower() for e in self._settings.dev_admin_emails.split(",") if e.strip()}
        local = email.split("@")[0]
        name = " ".join(part.capitalize() for part in re.split(r"[._-]+", local) if part) or local
        return Principal(sub=email, roles=frozenset({"admin"} if email in admins else ()), name=name)

    def _access(self, who: Principal) -> str:
        s = self._settings
        extra: dict[str, object] = {"typ": ACCESS_TYPE}
        if s.auth_jwt_audience:  # what the Authenticator requires when configured
            extra["aud"] = s.auth_jwt_audience
        if s.auth_jwt_issuer:
            extra["iss"] = s.auth_jwt_issuer
        return mint_token(who.sub, sorted(who.roles), self._secret(), ACCESS_TTL_SECONDS, who.name, extra)

    def _refresh(self, who: Principal) -> str:
        extra = {"typ": REFRESH_TYPE, "aud": REFRESH_AUDIENCE}
        return mint_token(who.sub, [], self._secret(), REFRESH_TTL_SECONDS, None, extra)

    def _secret(self) -> str:
        if not self._settings.auth_jwt_secret:  # RS256-only settings: nothing to sign dev tokens with
            raise AuthUnavailable("The dev login needs AUTH_JWT_SECRET to sign its tokens.")
        return self._settings.auth_jwt_secret


def profile(who: Principal) -> dict[str, object]:
    """The web client's profile (`GET /auth/profile/`), from the token's claims alone."""
    first, _, last = (who.name or who.sub.split("@")[0]).partition(" ")
    return {
        "id": who.sub,
        "email": who.sub if EMAIL.fullmatch(who.sub) else "",
        "first_name": first,
        "last_name": last,
        "is_staff": who.is_staff,
    }
