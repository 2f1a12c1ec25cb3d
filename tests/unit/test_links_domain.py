"""One-click answer tokens, pure: what verifies, and everything an attacker would try that must not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import links
from shared.domain.links import LinkClaims, LinkExpired, LinkRefused, sign, verify

KEY = b"k3y-One-7f2a9c4e1b8d6f3a0c5e9b2d4f7a1c8e"
OTHER = b"k3y-Two-0d9e8c7b6a5f4e3d2c1b0a9f8e7d6c5b"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
EXPIRES = int((NOW + timedelta(days=7)).timestamp())


def claims(**changes: object) -> LinkClaims:
    values: dict[str, object] = {
        "ticket_id": 42,
        "action_seq": 2,
        "answer": False,
        "expires": EXPIRES,
        "nonce": links.link_nonce(KEY, 42, 2, False),
        "owner_digest": links.owner_digest("alice@example.com"),
    }
    values.update(changes)
    return LinkClaims(**values)  # type: ignore[arg-type]


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_signed_link_verifies_to_its_claims_and_is_compact_url_safe_text() -> None:
    token = sign(claims(), KEY)
    assert verify(token, (KEY,), NOW) == claims()
    assert len(token) == links.TOKEN_CHARS == 111 and token.isascii()
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert "alice" not in token and b"alice" not in raw(token)  # the owner is only a digest
    assert verify(sign(claims(answer=True), KEY), (KEY,), NOW).answer is True


def test_every_single_character_change_of_a_token_is_refused() -> None:
    token = sign(claims(), KEY)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tried = 0
    for i, original in enumerate(token):
        for replacement in alphabet:
            if replacement == original:
                continue
            with pytest.raises(LinkRefused):
                verify(token[:i] + replacement + token[i + 1 :], (KEY,), NOW)
            tried += 1
    assert tried == 111 * 63


def test_every_single_byte_change_of_the_decoded_token_is_refused() -> None:
    data = raw(sign(claims(), KEY))
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            changed = bytearray(data)
            changed[i] ^= flip
            with pytest.raises(LinkRefused):
                verify(encode(bytes(changed)), (KEY,), NOW)


def test_a_cut_extended_padded_or_foreign_text_is_refused() -> None:
    token = sign(claims(), KEY)
    for bad in (
        token[:-1],
        token + "A",
        token + "=",
        token[:-2] + "==",
        "",
        token.replace(token[5], "+", 1),
        token.replace(token[5], "/", 1),
        token[:50] + "." + token[51:],
        " " + token[1:],
        "é" + token[1:],
    ):
        with pytest.raises(LinkRefused):
            verify(bad, (KEY,), NOW)


def test_a_link_signed_with_another_key_is_refused_and_a_rotated_key_still_verifies() -> None:
    token = sign(claims(), OTHER)
    with pytest.raises(LinkRefused):
        verify(token, (KEY,), NOW)
    assert verify(token, (KEY, OTHER), NOW) == claims()  # OTHER is the previous key


def test_a_key_id_naming_the_other_key_is_refused() -> None:
    """Swapping the key id byte for the other key's (re-encoded, tag unchanged) does not verify."""
    data = bytearray(raw(sign(claims(), KEY)))
    data[1] = links.key_id(OTHER)
    with pytest.raises(LinkRefused):
        verify(encode(bytes(data)), (KEY, OTHER), NOW)


def test_an_expired_link_is_expired_even_a_second_past_and_not_before() -> None:
    token = sign(claims(), KEY)
    expires_at = datetime.fromtimestamp(EXPIRES, UTC)
    assert verify(token, (KEY,), expires_at - timedelta(seconds=1)) == claims()
    for when in (expires_at, expires_at + timedelta(seconds=1), expires_at + timedelta(days=400)):
        with pytest.raises(LinkExpired) as caught:
            verify(token, (KEY,), when)
        assert caught.value.claims.ticket_id == 42


def test_an_expired_link_with_a_bad_signature_is_refused_not_expired() -> None:
    """The signature is checked first: "expired" tells only genuine links apart."""
    data = bytearray(raw(sign(claims(expires=1), KEY)))
    data[-1] ^= 1
    with pytest.raises(LinkRefused):
        verify(encode(bytes(data)), (KEY,), NOW)


def test_claims_for_another_ticket_or_owner_do_not_verify_under_the_original_tag() -> None:
    """Re-packing the body with another ticket, seq, answer, expiry or owner keeps the tag of the
    original: refused."""
    data = raw(sign(claims(), KEY))
    tag = data[-32:]
    for other in (
        claims(ticket_id=43),
        claims(action_seq=3),
        claims(answer=True),
        claims(expires=EXPIRES + 86400),
        claims(owner_digest=links.owner_digest("mallory@example.com")),
        claims(nonce=b"\x00" * 12),
    ):
        body = raw(sign(other, KEY))[:-32]
        with pytest.raises(LinkRefused):
            verify(encode(body + tag), (KEY,), NOW)
    assert claims().owned_by("alice@example.com") and not claims().owned_by("mallory@example.com")


def test_another_version_is_refused_even_when_correctly_signed() -> None:
    """A version byte we do not know is refused before any key is tried, even with a valid tag
    for its bytes (a future format, or an attacker's)."""
    body = bytearray(raw(sign(claims(), KEY))[:-32])
    for version in (0, 2, 255):
        body[0] = version
        tag = hmac.new(KEY, b"resolvemeq/feedback-link/v1\x00" + bytes(body), hashlib.sha256).digest()
        with pytest.raises(LinkRefused, match="version"):
            verify(encode(bytes(body) + tag), (KEY,), NOW)


def test_a_plain_sha256_or_a_tag_without_the_label_is_refused() -> None:
    """Algorithm confusion: a hash of the body (no key), or an HMAC without the domain label."""
    body = raw(sign(claims(), KEY))[:-32]
    for tag in (hashlib.sha256(body).digest(), hmac.new(KEY, body, hashlib.sha256).digest(), b"\x00" * 32):
        with pytest.raises(LinkRefused):
            verify(encode(body + tag), (KEY,), NOW)


def test_nonces_are_stable_per_answer_and_differ_between_answers_resolutions_and_keys() -> None:
    assert links.link_nonce(KEY, 42, 2, True) == links.link_nonce(KEY, 42, 2, True)
    nonces = {
        links.link_nonce(KEY, 42, 2, True),
        links.link_nonce(KEY, 42, 2, False),
        links.link_nonce(KEY, 42, 5, True),
        links.link_nonce(KEY, 43, 2, True),
        links.link_nonce(OTHER, 42, 2, True),
    }
    assert len(nonces) == 5
    assert claims().once_key == "link-" + claims().nonce.hex()


def test_signing_refuses_malformed_claims() -> None:
    with pytest.raises(ValueError):
        sign(claims(nonce=b"short"), KEY)
    with pytest.raises(struct.error):
        sign(claims(ticket_id=-1), KEY)
