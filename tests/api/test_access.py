"""Who may call what: registration's rate limit and public-only-by-explicit-marking."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.models import User
from neosl_api.app import create_app
from neosl_api.auth import mark_public
from tests.api.test_accounts import PASSWORD, auth, register
from tests.api.test_basics import assert_error


def test_registration_is_rate_limited_per_client_address(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    db: Session,
) -> None:
    strict = dataclasses.replace(settings, register_limit_per_address=3)
    client = create_app(strict, session_factory=session_factory, redis=redis_client).test_client()
    for i in range(3):
        register(client, f"user{i}", f"user{i}@example.com")
    body = {"username": "user3", "email": "user3@example.com", "password": PASSWORD}

    refused = client.post("/v1/auth/register", json=body)

    err = assert_error(refused, 429, "rate_limited")
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= strict.register_window_seconds
    assert err["details"] == {"retry_after": wait}
    assert db.scalar(select(User.id).where(User.username == "user3")) is None
    # Another client address has its own count.
    other = client.post("/v1/auth/register", json=body, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 201, other.get_json()
    assert other.get_json()["user"]["username"] == "user3"
    # The first address stays refused for the rest of its window.
    again = {"username": "user4", "email": "user4@example.com", "password": PASSWORD}
    assert_error(client.post("/v1/auth/register", json=again), 429, "rate_limited")


def _secret() -> dict[str, str]:
    return {"secret": "for tenants only"}


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/sneaky-static", "staticfoo"),
        ("/sneaky-docs", "api-docs.sneaky"),
        ("/sneaky-docs-json", "api-docs.openapi_json_v2"),
    ],
)
def test_a_name_like_a_public_one_does_not_make_an_endpoint_public(
    app: Flask, path: str, endpoint: str
) -> None:
    app.add_url_rule(path, endpoint=endpoint, view_func=_secret)
    client = app.test_client()

    resp = client.get(path)

    err = assert_error(resp, 401, "unauthorized")
    assert "secret" not in resp.get_data(as_text=True)
    assert "bearer" in err["message"]
    # The route itself works: the 401 is the credential check, not a broken route.
    headers = auth(register(client)["api_key"])
    assert client.get(path, headers=headers).get_json() == _secret()


def test_the_docs_and_probes_stay_public(client: FlaskClient) -> None:
    for path in ("/openapi.json", "/docs", "/healthz", "/docs-assets/swagger-ui.css"):
        assert client.get(path).status_code == 200, path
    # Static files: a missing one is 404, not 401.
    assert_error(client.get("/static/nope.txt"), 404, "not_found")
    # Everything else still asks for a credential.
    assert_error(client.get("/v1/gas/accounts"), 401, "unauthorized")


def test_mark_public_refuses_an_unknown_endpoint(app: Flask) -> None:
    with pytest.raises(KeyError, match="no-such-endpoint"):
        mark_public(app, "no-such-endpoint")
    assert "no-such-endpoint" not in app.view_functions
