"""Tenant accounts: registration, login, authentication and API-key rotation."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from redis import Redis
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.errors import Conflict, RateLimited, Unauthorized
from neosl.models import User
from neosl_api.services import credentials, passwords, ratelimit, starter

BAD_CREDENTIALS = "invalid credentials"


@dataclass(frozen=True)
class Registered:
    user: User
    api_key: str


def register(
    session: Session,
    redis: Redis,
    settings: Settings,
    username: str,
    email: str,
    password: str,
    client_address: str,
) -> Registered:
    """Create a tenant and its first API key (returned here only).

    Raises:
        RateLimited: too many registrations from this client address (each costs an argon2
            hash, so unlimited ones would let anyone burn the API's CPU).
        Conflict: the username (any case) or the email is taken.
    """
    wait = ratelimit.hit(
        redis,
        "nsl:register:address:" + client_address,
        settings.register_limit_per_address,
        settings.register_window_seconds,
    )
    if wait is not None:
        raise RateLimited("too many registrations from this address; try again later", wait)
    email = email.strip().lower()
    taken = session.execute(
        select(User.username, User.email).where(
            or_(func.lower(User.username) == username.lower(), User.email == email)
        )
    ).first()
    if taken is not None:
        raise _taken(email == taken.email)
    api_key = credentials.new_api_key()
    user = User(
        username=username,
        email=email,
        password_hash=passwords.hash_password(password),
        api_key_hash=credentials.hash_api_key(api_key),
    )
    session.add(user)
    try:
        session.flush()
        # The dev stack's starter balance (nothing elsewhere): in the same transaction.
        starter.grant(session, settings, user.id)
        session.commit()
    except IntegrityError as exc:
        # Two registrations raced past the check above; the unique indexes decided.
        session.rollback()
        raise _taken("email" in str(exc.orig)) from None
    return Registered(user, api_key)


def _taken(email: bool) -> Conflict:
    field = "email" if email else "username"
    return Conflict(f"{field} is already registered", {field: ["Already registered."]})


@dataclass(frozen=True)
class LoginResult:
    user: User
    token: credentials.Token


def login(
    session: Session,
    redis: Redis,
    settings: Settings,
    identifier: str,
    password: str,
    client_address: str,
) -> LoginResult:
    """Check a username-or-email and password; issue a bearer token.

    Raises:
        RateLimited: too many attempts for this account or from this address.
        Unauthorized: wrong identifier, wrong password or inactive account (one message).
    """
    identifier = identifier.strip().lower()
    account_key = "nsl:login:account:" + hashlib.sha256(identifier.encode()).hexdigest()
    window = settings.login_window_seconds
    for key, limit in (
        ("nsl:login:address:" + client_address, settings.login_limit_per_address),
        (account_key, settings.login_limit_per_account),
    ):
        wait = ratelimit.hit(redis, key, limit, window)
        if wait is not None:
            raise RateLimited("too many login attempts; try again later", wait)

    user = session.scalars(
        select(User).where(or_(func.lower(User.username) == identifier, User.email == identifier))
    ).one_or_none()
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthorized(BAD_CREDENTIALS)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        session.commit()
    ratelimit.reset(redis, account_key)
    token = credentials.issue_token(
        settings.require_secret_key(), user.id, user.token_generation, settings.token_ttl_seconds
    )
    return LoginResult(user, token)


@dataclass(frozen=True, slots=True)
class Caller:
    """The active account a request acts for: what ``GET /v1/me`` shows, and its id."""

    id: int
    username: str
    email: str
    is_active: bool
    created_at: dt.datetime


# Every authenticated request runs one of these. Built once: re-executing the same statement
# object lets SQLAlchemy reuse its cache key and result map, which a fresh select() rebuilds
# on every call; and plain rows skip the ORM's identity map and instance construction. They
# load only what a Caller holds (never the password or key hash).
_CALLER_COLUMNS = (User.id, User.username, User.email, User.is_active, User.created_at)
_CALLER_BY_KEY_HASH = select(*_CALLER_COLUMNS).where(User.api_key_hash == bindparam("key_hash"))
# A login token of an earlier generation (issued before the last key rotation) finds no row.
_CALLER_BY_TOKEN = select(*_CALLER_COLUMNS).where(
    User.id == bindparam("user_id"), User.token_generation == bindparam("generation")
)


def authenticate(session: Session, settings: Settings, bearer: str) -> Caller:
    """The active account an API key or login token belongs to, read from the database on
    every call (nothing is cached, so a rotated key, a login token issued before the rotation
    or a deactivated account is refused at once).

    Raises:
        Unauthorized: unknown, malformed, expired or revoked credential, or inactive account.
    """
    row = None
    if bearer.startswith(credentials.API_KEY_PREFIX):
        key_hash = credentials.hash_api_key(bearer)
        row = (
            session.connection().execute(_CALLER_BY_KEY_HASH, {"key_hash": key_hash}).one_or_none()
        )
    elif (claims := credentials.verify_token(settings.require_secret_key(), bearer)) is not None:
        params = {"user_id": claims.user_id, "generation": claims.generation}
        row = session.connection().execute(_CALLER_BY_TOKEN, params).one_or_none()
    if row is None or not row.is_active:
        raise Unauthorized("invalid or expired credentials")
    return Caller(row.id, row.username, row.email, row.is_active, row.created_at)


def rotate_api_key(session: Session, user_id: int) -> Registered:
    """Replace the user's API key. The old key and every login token issued before stop
    working when this commits: rotating is how a tenant whose credentials leaked starts afresh.
    """
    user = session.get_one(User, user_id, with_for_update=True)
    api_key = credentials.new_api_key()
    user.api_key_hash = credentials.hash_api_key(api_key)
    # In SQL: the increment must not depend on what this session happened to load before.
    user.token_generation = User.token_generation + 1
    session.commit()
    return Registered(user, api_key)
