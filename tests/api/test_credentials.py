from __future__ import annotations

import hashlib

from neosl_api.services import credentials, passwords

SECRET = b"k" * 32


def test_api_key_has_prefix_and_256_random_bits() -> None:
    keys = {credentials.new_api_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith("nsl_")
        # token_urlsafe(32): 32 random bytes -> 43 base64 characters.
        assert len(key) == len("nsl_") + 43


def test_api_key_hash_is_sha256_hex() -> None:
    key = credentials.new_api_key()
    assert credentials.hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_token_round_trip_and_expiry() -> None:
    token = credentials.issue_token(SECRET, 42, 7, ttl_seconds=60, now=1000.0)
    assert token.value.startswith("nslt_42.7.1060.")
    assert token.expires_at == 1060
    claims = credentials.TokenClaims(user_id=42, generation=7)
    assert credentials.verify_token(SECRET, token.value, now=1059.0) == claims
    assert credentials.verify_token(SECRET, token.value, now=1060.0) is None


def test_tampered_or_foreign_tokens_are_rejected() -> None:
    token = credentials.issue_token(SECRET, 42, 7, ttl_seconds=60, now=1000.0).value
    for forged in (
        token.replace("nslt_42.", "nslt_43."),
        token.replace(".7.", ".8."),  # a later generation: it would survive a rotation
        token.replace(".7.", "."),
    ):
        assert credentials.verify_token(SECRET, forged, now=1001.0) is None
    assert credentials.verify_token(b"o" * 32, token, now=1001.0) is None
    junk = ("", "nslt_", "nslt_a.b.c", "nslt_1.2", "nslt_1.2.3", "nslt_\u00b2.0.5.x", "nsl_abc")
    for value in (*junk, token + "x", token[:-1] + "\u00e9"):
        assert credentials.verify_token(SECRET, value, now=1001.0) is None


def test_password_hash_is_argon2id_with_owasp_parameters() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in stored
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.verify_password(stored, "wrong horse battery")
    assert not passwords.verify_password(None, "correct horse battery")
    assert not passwords.verify_password("not-a-hash", "x")
