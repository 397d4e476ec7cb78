"""Tenant accounts over HTTP: register, login, me, key rotation, rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.db import make_engine, make_session_factory
from neosl.functions.sandbox import SandboxPool
from neosl.models import User
from neosl_api.app import create_app
from neosl_api.services import credentials
from tests.api.test_basics import assert_error

PASSWORD = "correct horse battery"


def register(
    client: FlaskClient, username: str = "alice", email: str = "alice@example.com"
) -> dict[str, Any]:
    resp = client.post(
        "/v1/auth/register", json={"username": username, "email": email, "password": PASSWORD}
    )
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_register_returns_user_and_key_once(client: FlaskClient, db: Session) -> None:
    body = register(client, "Alice", "Alice@Example.com")
    assert body["user"]["username"] == "Alice"
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["is_active"] is True
    assert "password" not in body["user"]
    key = body["api_key"]
    assert key.startswith("nsl_")
    row = db.scalars(select(User).where(User.id == body["user"]["id"])).one()
    assert row.api_key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in (row.password_hash, row.api_key_hash)
    assert row.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "a" * 51),
        ("username", "bad name"),
        ("username", "bäd"),
        ("email", "not-an-email"),
        ("password", "short"),
        ("password", 12345678901),
    ],
)
def test_register_validation(client: FlaskClient, field: str, value: object) -> None:
    body: dict[str, object] = {
        "username": "alice",
        "email": "alice@example.com",
        "password": PASSWORD,
    }
    body[field] = value
    err = assert_error(client.post("/v1/auth/register", json=body), 422, "validation_error")
    assert field in err["details"]


def test_register_missing_fields(client: FlaskClient) -> None:
    err = assert_error(client.post("/v1/auth/register", json={}), 422, "validation_error")
    assert set(err["details"]) == {"username", "email", "password"}


@pytest.mark.parametrize(
    ("username", "email", "field"),
    [
        ("alice", "other@example.com", "username"),
        ("ALICE", "other@example.com", "username"),
        ("bob", "alice@example.com", "email"),
        ("bob", "ALICE@example.com", "email"),
    ],
)
def test_taken_username_or_email_is_409(
    client: FlaskClient, username: str, email: str, field: str
) -> None:
    register(client)
    resp = client.post(
        "/v1/auth/register", json={"username": username, "email": email, "password": PASSWORD}
    )
    err = assert_error(resp, 409, "conflict")
    assert field in err["details"]


def test_me_with_api_key(client: FlaskClient) -> None:
    body = register(client)
    resp = client.get("/v1/me", headers=auth(body["api_key"]))
    assert resp.status_code == 200
    assert resp.get_json() == body["user"]


@pytest.mark.parametrize("field", ["username", "email"])
def test_login_with_username_or_email_gives_a_working_token(
    client: FlaskClient, settings: Settings, field: str
) -> None:
    body = register(client)
    ident = {"username": "ALICE", "email": "alice@example.com"}[field]
    resp = client.post("/v1/auth/login", json={field: ident, "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    token = resp.get_json()
    assert token["token_type"] == "Bearer"
    assert token["access_token"].startswith("nslt_")
    assert token["expires_in"] == settings.token_ttl_seconds
    me = client.get("/v1/me", headers=auth(token["access_token"]))
    assert me.get_json()["id"] == body["user"]["id"]


def test_login_needs_exactly_one_identifier(client: FlaskClient) -> None:
    assert_error(
        client.post("/v1/auth/login", json={"password": PASSWORD}), 422, "validation_error"
    )
    both = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    assert_error(client.post("/v1/auth/login", json=both), 422, "validation_error")


def test_wrong_credentials_do_not_say_which_part(client: FlaskClient) -> None:
    register(client)
    wrong_pw = client.post(
        "/v1/auth/login", json={"username": "alice", "password": "wrong password!"}
    )
    no_user = client.post("/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
    e1 = assert_error(wrong_pw, 401, "unauthorized")
    e2 = assert_error(no_user, 401, "unauthorized")
    assert e1 == e2


def test_login_rate_limited_per_account(client: FlaskClient, settings: Settings) -> None:
    register(client)
    for i in range(settings.login_limit_per_account):
        # Different client addresses: only the per-account counter can trip.
        resp = client.post(
            "/v1/auth/login",
            json={"username": "alice", "password": "wrong password!"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{i}"},
        )
        assert resp.status_code == 401
    resp = client.post(
        "/v1/auth/login",
        json={"username": "alice", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.1.1"},
    )
    err = assert_error(resp, 429, "rate_limited")
    assert 0 < int(resp.headers["Retry-After"]) <= settings.login_window_seconds
    assert err["details"]["retry_after"] == int(resp.headers["Retry-After"])
    # Another account is not affected.
    register(client, "bob", "bob@example.com")
    ok = client.post("/v1/auth/login", json={"username": "bob", "password": PASSWORD})
    assert ok.status_code == 200


def test_login_rate_limited_per_address(client: FlaskClient, settings: Settings) -> None:
    addr = {"REMOTE_ADDR": "192.0.2.7"}
    for i in range(settings.login_limit_per_address):
        resp = client.post(
            "/v1/auth/login", json={"username": f"user{i}", "password": PASSWORD}, environ_base=addr
        )
        assert resp.status_code == 401
    resp = client.post(
        "/v1/auth/login", json={"username": "x1", "password": PASSWORD}, environ_base=addr
    )
    assert_error(resp, 429, "rate_limited")
    other = client.post(
        "/v1/auth/login",
        json={"username": "x1", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.8"},
    )
    assert other.status_code == 401


def test_rotate_key_stops_the_old_one_at_once(client: FlaskClient) -> None:
    old = register(client)["api_key"]
    resp = client.post("/v1/me/api-key", headers=auth(old))
    assert resp.status_code == 201
    new = resp.get_json()["api_key"]
    assert new.startswith("nsl_")
    assert new != old
    assert_error(client.get("/v1/me", headers=auth(old)), 401, "unauthorized")
    assert client.get("/v1/me", headers=auth(new)).status_code == 200


def login(client: FlaskClient) -> str:
    resp = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    token: str = resp.get_json()["access_token"]
    return token


def test_rotating_the_key_revokes_every_login_token_issued_before(
    client: FlaskClient, settings: Settings
) -> None:
    registered = register(client)
    key, user_id = registered["api_key"], registered["user"]["id"]
    first, second = login(client), login(client)
    for token in (first, second):
        assert client.get("/v1/me", headers=auth(token)).status_code == 200
    # A genuinely signed token of the earlier format (no generation) is refused even at
    # generation 0: the migration put every account there, rotated before or not.
    legacy = legacy_token(settings, user_id)
    assert_error(client.get("/v1/me", headers=auth(legacy)), 401, "unauthorized")
    # Rotated with a login token: that one goes too.
    resp = client.post("/v1/me/api-key", headers=auth(first))
    assert resp.status_code == 201
    for old in (first, second, key):
        assert_error(client.get("/v1/me", headers=auth(old)), 401, "unauthorized")
    after = login(client)
    assert client.get("/v1/me", headers=auth(after)).status_code == 200
    # Rotating again revokes that one, and only tokens of the new generation work.
    client.post("/v1/me/api-key", headers=auth(resp.get_json()["api_key"]))
    assert_error(client.get("/v1/me", headers=auth(after)), 401, "unauthorized")
    assert client.get("/v1/me", headers=auth(login(client))).status_code == 200


def legacy_token(settings: Settings, user_id: int) -> str:
    payload = f"{user_id}.{int(time.time()) + 3600}"
    mac = hmac.new(settings.require_secret_key(), payload.encode(), hashlib.sha256).digest()
    return f"nslt_{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6cGFzcw==",
        "Bearer nsl_not-a-real-key",
        "Bearer nslt_1.99999999999.forged",
        "Bearer nslt_1.0.99999999999.forged",
        "Bearer nslt_1.0.99999999999.\u00e9",
        "Bearer nslt_\u00b2.0.99999999999.x",
        "Bearer something-else",
    ],
)
def test_bad_credentials_are_401(client: FlaskClient, header: str) -> None:
    register(client)
    headers = {"Authorization": header} if header else {}
    assert_error(client.get("/v1/me", headers=headers), 401, "unauthorized")


def test_expired_token_is_401(client: FlaskClient, settings: Settings) -> None:
    user_id = register(client)["user"]["id"]
    expired = credentials.issue_token(
        settings.require_secret_key(), user_id, 0, ttl_seconds=60, now=1_000_000
    )
    assert_error(client.get("/v1/me", headers=auth(expired.value)), 401, "unauthorized")


def test_deactivated_account_is_locked_out(client: FlaskClient, db: Session) -> None:
    body = register(client)
    token = client.post(
        "/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    ).get_json()["access_token"]
    user = db.get_one(User, body["user"]["id"])
    user.is_active = False
    db.commit()
    assert_error(client.get("/v1/me", headers=auth(body["api_key"])), 401, "unauthorized")
    assert_error(client.get("/v1/me", headers=auth(token)), 401, "unauthorized")
    resp = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert_error(resp, 401, "unauthorized")


def test_rotation_and_deactivation_reach_another_app_instance_at_once(
    settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    """Two API processes, as under gunicorn: each has its own engine, pool and connections,
    and the data is committed. Whatever makes authentication fast must not let a credential
    outlive its rotation or its account in the other process."""
    engine_b = make_engine(settings)
    try:
        a = create_app(settings, session_factory=sessions, redis=redis_client, sandbox=sandbox)
        b = create_app(
            settings,
            session_factory=make_session_factory(engine_b),
            redis=redis_client,
            sandbox=sandbox,
        )
        client_a, client_b = a.test_client(), b.test_client()
        old = register(client_a)["api_key"]
        token = client_a.post(
            "/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        ).get_json()["access_token"]
        # Enough requests for B's connection to have prepared the lookup statements.
        for _ in range(8):
            assert client_b.get("/v1/me", headers=auth(old)).status_code == 200
            assert client_b.get("/v1/me", headers=auth(token)).status_code == 200

        new = client_a.post("/v1/me/api-key", headers=auth(old)).get_json()["api_key"]
        assert_error(client_b.get("/v1/me", headers=auth(old)), 401, "unauthorized")
        assert_error(client_b.get("/v1/me", headers=auth(token)), 401, "unauthorized")
        assert client_b.get("/v1/me", headers=auth(new)).status_code == 200
        token = login(client_a)
        assert client_b.get("/v1/me", headers=auth(token)).status_code == 200

        with sessions() as db:
            db.execute(update(User).where(User.username == "alice").values(is_active=False))
            db.commit()
        assert_error(client_b.get("/v1/me", headers=auth(new)), 401, "unauthorized")
        assert_error(client_b.get("/v1/me", headers=auth(token)), 401, "unauthorized")
    finally:
        engine_b.dispose()
