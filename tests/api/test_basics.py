"""Probes, the OpenAPI document and the one JSON error shape."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.models import ChainCursor
from neosl.onchain.blocks import FOLLOWER_CURSOR
from neosl_api.app import create_app
from neosl_api.auth import public
from neosl_devstack.servers import free_port
from tests.scraping import api_figures


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in resp.get_data(as_text=True)
    return dict(body["error"])


def test_healthz(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_ok(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok"},
        "chain_follower": None,
    }


def test_readyz_and_the_metrics_report_follower_lag(client: FlaskClient, db: Session) -> None:
    db.add(ChainCursor(name=FOLLOWER_CURSOR, position=90, chain_height=100))
    db.add(ChainCursor(name="ledger-deposits", position=5))
    db.commit()
    follower = client.get("/readyz").get_json()["chain_follower"]
    assert follower["next_block"] == 90
    assert follower["chain_height"] == 100
    assert follower["lag_blocks"] == 10
    assert follower["updated_seconds_ago"] >= 0
    # Not on the public port, where any tenant could read every tenant's figures: the
    # gunicorn master serves them on the metrics port (neosl_api.serving).
    assert client.get("/metrics").status_code == 404
    text = api_figures(client.application)
    assert "neosl_chain_follower_lag_blocks 10.0" in text
    assert "neosl_chain_height 100.0" in text
    assert "neosl_withdrawals_pending 0.0" in text


@pytest.mark.slow
def test_readyz_503_when_broker_is_down(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    dead = Redis(port=free_port(), socket_connect_timeout=0.5)
    app = create_app(settings, session_factory=session_factory, redis=dead)
    resp = app.test_client().get("/readyz")
    err = assert_error(resp, 503, "not_ready")
    assert err["details"] == {"database": "ok", "broker": "unreachable"}


def test_readyz_503_when_database_is_down(settings: Settings, redis_client: Redis) -> None:
    dead_db = settings.__class__(
        **{**settings.__dict__, "database_url": f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x"}
    )
    app = create_app(dead_db, redis=redis_client)
    err = assert_error(app.test_client().get("/readyz"), 503, "not_ready")
    assert err["details"] == {"database": "unreachable", "broker": "ok"}


def test_openapi_document_is_valid_and_complete(client: FlaskClient) -> None:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/auth/register", "/v1/auth/login", "/v1/me", "/v1/me/api-key", "/readyz"):
        assert path in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/auth/register"]["post"]["security"] == []
    assert "security" not in spec["paths"]["/v1/me"]["get"]  # inherits the global bearer rule
    assert "Error" in spec["components"]["schemas"]


def test_swagger_ui_is_served_with_local_assets(client: FlaskClient) -> None:
    resp = client.get("/docs")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert 'src="/docs-assets/swagger-ui-bundle.js"' in page
    assert "https://" not in page
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert len(js.get_data()) > 100_000
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
    assert_error(client.get("/docs-assets/nope.js"), 404, "not_found")


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_json_405_with_allow(client: FlaskClient) -> None:
    resp = client.delete("/v1/auth/register")
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    resp = client.post(
        "/v1/auth/register", data="username=a", content_type="application/x-www-form-urlencoded"
    )
    assert_error(resp, 415, "unsupported_media_type")


def test_malformed_json_is_400(client: FlaskClient) -> None:
    resp = client.post("/v1/auth/register", data="{not json", content_type="application/json")
    assert_error(resp, 400, "bad_request")


def test_non_object_json_is_422(client: FlaskClient) -> None:
    resp = client.post("/v1/auth/register", json=["a", "b"])
    assert_error(resp, 422, "validation_error")


def test_unknown_fields_are_422(client: FlaskClient) -> None:
    body = {"username": "alice", "email": "a@example.com", "password": "x" * 12, "admin": True}
    err = assert_error(client.post("/v1/auth/register", json=body), 422, "validation_error")
    assert err["details"] == {"admin": ["Unknown field."]}


def test_oversized_body_is_413(
    settings: Settings, session_factory: sessionmaker[Session], redis_client: Redis
) -> None:
    small = settings.__class__(**{**settings.__dict__, "max_body_bytes": 1024})
    app = create_app(small, session_factory=session_factory, redis=redis_client)
    body = {"username": "alice", "email": "a@example.com", "password": "x" * 2000}
    assert_error(app.test_client().post("/v1/auth/register", json=body), 413, "payload_too_large")


def test_unexpected_exception_is_json_500_without_trace(app: Flask) -> None:
    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    public(boom)
    resp = app.test_client().get("/boom")
    err = assert_error(resp, 500, "internal_error")
    assert "secret internals" not in resp.get_data(as_text=True)
    assert err["message"] == "internal server error"


@pytest.mark.parametrize("path", ["/v1/me", "/v1/me/api-key"])
def test_protected_routes_need_a_credential(client: FlaskClient, path: str) -> None:
    method = client.get if path == "/v1/me" else client.post
    resp = method(path)
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
