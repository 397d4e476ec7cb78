"""API keys and login tokens.

API keys are ``nsl_`` + 256 random bits; only their SHA-256 is stored. Login tokens are
``nslt_<user id>.<expiry>.<HMAC-SHA256>``, signed with ``NSL_SECRET_KEY``: they need no
storage, and the account is still checked (exists, active) on every request.
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
    expires_at: int


def _sign(secret_key: bytes, payload: str) -> str:
    mac = hmac.new(secret_key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_token(
    secret_key: bytes, user_id: int, ttl_seconds: int, now: float | None = None
) -> Token:
    expires_at = int((time.time() if now is None else now) + ttl_seconds)
    payload = f"{user_id}.{expires_at}"
    return Token(f"{TOKEN_PREFIX}{payload}.{_sign(secret_key, payload)}", user_id, expires_at)


def verify_token(secret_key: bytes, value: str, now: float | None = None) -> int | None:
    """The user id of a valid, unexpired token; None for anything else."""
    if not value.startswith(TOKEN_PREFIX):
        return None
    parts = value[len(TOKEN_PREFIX) :].split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    user_id, expires_at, signature = parts
    if not hmac.compare_digest(signature, _sign(secret_key, f"{user_id}.{expires_at}")):
        return None
    if int(expires_at) <= (time.time() if now is None else now):
        return None
    return int(user_id)
