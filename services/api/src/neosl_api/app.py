"""The Flask application factory.

``gunicorn 'neosl_api.app:create_app()'`` serves it; tests pass their own settings,
session factory and Redis client.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from neosl import logs
from neosl.celery_app import make_celery
from neosl.config import Settings, load_settings
from neosl.db import make_engine, make_session_factory
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.gas import bank
from neosl.metrics import prepare_multiprocess_dir
from neosl.onchain import relaybox
from neosl_api import auth, bodies, context, errors, jsonbody, requests
from neosl_api.metrics import HttpMetrics
from neosl_api.routes import (
    accounts,
    docs_assets,
    functions,
    gas,
    health,
    onchain,
    pricefeeds,
    secrets,
    triggers,
)
from neosl_api.schemas.common import ErrorSchema

API_VERSION = "1.0.0"


class JsonErrorApi(Api):  # type: ignore[misc]  # flask-smorest ships no type hints
    """flask-smorest's Api with our error shape instead of its own."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: Exception) -> Any:
        return errors.handle_http_exception(error)  # type: ignore[arg-type]


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: sessionmaker[Session] | None = None,
    redis: Redis | None = None,
    sandbox: SandboxPool | None = None,
) -> Flask:
    """The API. ``sandbox`` compiles functions' sources (by default a small pool of sandbox
    processes started on first use); tests pass one shared pool."""
    settings = settings or load_settings()
    # Showing tenants no deposit address, or an invalid one, must stop the start; so must
    # a missing token or secrets key, or relay keys that do not pair up.
    bank.deposit_address(settings)
    relaybox.relay_public_key(settings)
    settings.require_secret_key()
    settings.require_secrets_keys()
    logs.configure(settings)
    prepare_multiprocess_dir()
    app = Flask("neosl_api")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="Neo N3 Service Layer",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=docs_assets.ASSETS_URL,
        API_SPEC_OPTIONS={
            "info": {"description": _API_DESCRIPTION},
            "security": [{"bearerAuth": []}],
        },
        JSON_SORT_KEYS=False,
    )
    if settings.proxy_hops:
        # Behind N trusted proxies the client address is the N-th from the right.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings))
    if redis is None:
        redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    dispatcher = Dispatcher(make_celery(settings, "neosl_api"))
    http_metrics = HttpMetrics()
    app.extensions["neosl"] = context.ApiState(
        settings, session_factory, redis, dispatcher, http_metrics.registry, sandbox
    )
    app.teardown_appcontext(context.close_db)

    api = JsonErrorApi(app)
    api.spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (nsl_…) or a login token (nslt_…).",
        },
    )
    errors.register(app)
    requests.init_app(app, http_metrics)
    # Bodies before credentials: one check for every route, public or not.
    bodies.init_app(app)
    auth.init_app(app)
    api.register_blueprint(health.blp)
    api.register_blueprint(accounts.blp)
    api.register_blueprint(gas.blp)
    api.register_blueprint(functions.blp)
    api.register_blueprint(secrets.blp)
    api.register_blueprint(onchain.blp)
    api.register_blueprint(triggers.blp)
    api.register_blueprint(pricefeeds.blp)
    # Plain Flask blueprints, outside the OpenAPI document: static files.
    app.register_blueprint(docs_assets.blp)
    # Registered by Flask and flask-smorest, so marked here by their exact names.
    auth.mark_public(app, *_OTHER_PUBLIC_ENDPOINTS)
    return app


_OTHER_PUBLIC_ENDPOINTS = ("static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui")


# An f-string for the depth limit: JSON's braces are doubled.
_API_DESCRIPTION = f"""\
Self-hosted functions, triggers, price feeds and a GAS bank for Neo N3 dApps.

**Authentication.** Every endpoint except registration, login and the probes requires
`Authorization: Bearer <credential>`, where the credential is an API key (`nsl_…`, from
registration or `POST /v1/me/api-key`) or a login token (`nslt_…`, from `POST /v1/auth/login`).
Issuing a new API key revokes the old one and every login token issued before.

**Errors.** Every error answers `{{"error": {{"code", "message", "details"}}}}`.

**Bodies.** A request body is JSON (`Content-Type: application/json`, else 415), UTF-8 and
nested at most {jsonbody.MAX_DEPTH} levels deep (arrays and objects; the body itself is
level 1); any other body is a 400, on every endpoint, before anything else is checked. A
string in it (a value or a key) holding `\\u0000` or an unpaired surrogate (`\\ud800`), which
cannot be stored, is a 422 naming the field.

**Pagination.** List endpoints take `limit` (1-100, default 20) and `cursor`, and answer
`{{"items": [...], "next_cursor": "…" | null}}`; pass `next_cursor` back as `cursor` for the
next page. Items are ordered newest first.
"""
