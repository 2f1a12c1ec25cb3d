"""One-click answer links ("Yes, it works" / "No, still broken"): signing and verification, pure.

A token is base64url (no padding) of 83 bytes:

    version (1) | key id (1) | ticket id (8) | action seq (4) | answer (1) | expires (8, Unix s)
    | nonce (12) | owner digest (16) | HMAC-SHA256 tag (32)

The tag covers a domain-separation label and every byte before it, under the key the key id names
(the id is derived from the key, so rotating to a new key needs no bookkeeping, and the previous
key keeps its links valid until they expire). The owner is bound by a digest, so the link never
carries the owner's e-mail address into a URL (proxies and chat services log URLs). Decoding is
strict: one canonical text per token (a character changed in the bits base64 leaves unused is
refused like any other change), one version, a tag compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

VERSION = 1
_LABEL = b"resolvemeq/feedback-link/v1\x00"
_BODY = struct.Struct(">BBQIBq12s16s")  # version, key id, ticket, seq, answer, expires, nonce, owner
TAG_BYTES = 32
TOKEN_BYTES = _BODY.size + TAG_BYTES
TOKEN_CHARS = (TOKEN_BYTES * 8 + 5) // 6
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")


class LinkRefused(Exception):
    """The token is not one of ours: malformed, altered, an unknown version or key."""


class LinkExpired(Exception):
    """A genuine token whose feedback window has ended."""

    def __init__(self, claims: LinkClaims) -> None:
        super().__init__(f"link for ticket {claims.ticket_id} expired")
        self.claims = claims


@dataclass(frozen=True)
class LinkClaims:
    """What a link says: answer `answer` on the auto-resolution at `action_seq` of ticket
    `ticket_id`, owned by the owner whose digest is `owner_digest`, until `expires`."""

    ticket_id: int
    action_seq: int
    answer: bool
    expires: int  # Unix seconds
    nonce: bytes
    owner_digest: bytes

    @property
    def once_key(self) -> str:
        """The link's single-use record in the ticket's idempotency ledger."""
        return f"link-{self.nonce.hex()}"

    def owned_by(self, owner: str) -> bool:
        return hmac.compare_digest(self.owner_digest, owner_digest(owner))

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


def owner_digest(owner: str) -> bytes:
    return hashlib.sha256(b"resolvemeq/link-owner\x00" + owner.encode()).digest()[:16]


def key_id(key: bytes) -> int:
    """A byte naming the key; two keys may share one (1 in 256): verification then tries both."""
    return hashlib.sha256(b"resolvemeq/link-key-id\x00" + key).digest()[0]


def link_nonce(key: bytes, ticket_id: int, action_seq: int, answer: bool) -> bytes:
    """The nonce of the follow-up's link for one answer: the same on every delivery of one
    follow-up (its notification is written again unchanged), different per answer, unguessable."""
    message = struct.pack(">QIB", ticket_id, action_seq, answer)
    return hmac.new(key, b"resolvemeq/link-nonce\x00" + message, hashlib.sha256).digest()[:12]


def sign(claims: LinkClaims, key: bytes) -> str:
    if len(claims.nonce) != 12 or len(claims.owner_digest) != 16:
        raise ValueError("a link needs a 12-byte nonce and a 16-byte owner digest")
    body = _BODY.pack(
        VERSION,
        key_id(key),
        claims.ticket_id,
        claims.action_seq,
        int(claims.answer),
        claims.expires,
        claims.nonce,
        claims.owner_digest,
    )
    return base64.urlsafe_b64encode(body + _tag(key, body)).rstrip(b"=").decode()


def verify(token: str, keys: tuple[bytes, ...], now: datetime) -> LinkClaims:
    """The claims of a token signed by one of `keys` (current first). Raises LinkRefused for
    anything not exactly as we signed it, LinkExpired for a genuine one past its expiry."""
    if len(token) != TOKEN_CHARS or not _ALPHABET.match(token):
        raise LinkRefused("not a link token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise LinkRefused("not a link token") from None
    if len(raw) != TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise LinkRefused("not the canonical encoding")  # unused low bits of the last character
    body, tag = raw[: _BODY.size], raw[_BODY.size :]
    version, kid, ticket_id, seq, answer, expires, nonce, owner = _BODY.unpack(body)
    if version != VERSION:
        raise LinkRefused(f"unknown link version {version}")
    genuine = False
    for key in keys:  # every candidate is checked, so timing does not say which key matched
        genuine |= key_id(key) == kid and hmac.compare_digest(_tag(key, body), tag)
    if not genuine:
        raise LinkRefused("bad signature")
    if answer not in (0, 1) or ticket_id < 1 or seq < 1:
        raise LinkRefused("malformed claims")  # only a key holder could sign these: a bug
    claims = LinkClaims(ticket_id, seq, bool(answer), expires, nonce, owner)
    if now.timestamp() >= expires:
        raise LinkExpired(claims)
    return claims


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, _LABEL + body, hashlib.sha256).digest()
