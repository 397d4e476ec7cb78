"""API keys and login tokens.

API keys are ``nsl_`` + 256 random bits; only their SHA-256 is stored. Login tokens are
``nslt_<user id>.<generation>.<expiry>.<HMAC-SHA256>``, signed with ``NSL_SECRET_KEY``: they
need no storage, and the account is still checked on every request (exists, active, and its
``token_generation`` is still the token's: rotating the API key increments it, which revokes
every token issued before).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

API_KEY_PREFIX = "nsl_"
TOKEN_PREFIX = "nslt_"  # noqa: S105 - a prefix, not a secret


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Token:
    value: str
    user_id: int
    generation: int
    expires_at: int


@dataclass(frozen=True)
class TokenClaims:
    """What a genuine, unexpired token says; the account must still be at ``generation``."""

    user_id: int
    generation: int


def _sign(secret_key: bytes, payload: str) -> str:
    mac = hmac.new(secret_key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_token(
    secret_key: bytes, user_id: int, generation: int, ttl_seconds: int, now: float | None = None
) -> Token:
    expires_at = int((time.time() if now is None else now) + ttl_seconds)
    payload = f"{user_id}.{generation}.{expires_at}"
    return Token(
        f"{TOKEN_PREFIX}{payload}.{_sign(secret_key, payload)}", user_id, generation, expires_at
    )


def verify_token(secret_key: bytes, value: str, now: float | None = None) -> TokenClaims | None:
    """The claims of a genuine, unexpired token; None for anything else (including tokens of
    the earlier format without a generation, which may predate a key rotation)."""
    if not value.startswith(TOKEN_PREFIX):
        return None
    parts = value[len(TOKEN_PREFIX) :].split(".")
    # isascii: str.isdigit also accepts "²", which int() refuses.
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts[:3]):
        return None
    user_id, generation, expires_at, signature = parts
    expected = _sign(secret_key, f"{user_id}.{generation}.{expires_at}")
    # As bytes: compare_digest raises TypeError on str with non-ASCII characters.
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    if int(expires_at) <= (time.time() if now is None else now):
        return None
    return TokenClaims(int(user_id), int(generation))
