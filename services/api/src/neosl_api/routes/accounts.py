"""Tenant accounts: register, log in, who am I, rotate the API key."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request

from neosl_api import context
from neosl_api.auth import public
from neosl_api.blueprint import Blueprint
from neosl_api.schemas.accounts import (
    ApiKeySchema,
    LoginSchema,
    RegisteredSchema,
    RegisterSchema,
    TokenSchema,
    UserSchema,
)
from neosl_api.services import accounts

blp = Blueprint("accounts", __name__, url_prefix="/v1", description="Tenant accounts")


@blp.route("/auth/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, RegisteredSchema)
@blp.alt_response(409, description="Username or email already registered")
@blp.alt_response(429, description="Too many registrations from this address")
@blp.doc(security=[])
@public
def register(body: dict[str, Any]) -> accounts.Registered:
    """Create a tenant account. The API key in the answer is shown only this once."""
    return accounts.register(
        context.db(),
        context.redis(),
        context.settings(),
        body["username"],
        body["email"],
        body["password"],
        request.remote_addr or "unknown",
    )


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenSchema)
@blp.alt_response(401, description="Wrong credentials")
@blp.alt_response(429, description="Too many attempts")
@blp.doc(security=[])
@public
def login(body: dict[str, Any]) -> dict[str, Any]:
    """Exchange a username (or email) and password for a bearer token with an expiry."""
    result = accounts.login(
        context.db(),
        context.redis(),
        context.settings(),
        body.get("username") or body["email"],
        body["password"],
        request.remote_addr or "unknown",
    )
    return {
        "access_token": result.token.value,
        "token_type": "Bearer",
        "expires_at": dt.datetime.fromtimestamp(result.token.expires_at, dt.UTC),
        "expires_in": context.settings().token_ttl_seconds,
    }


@blp.route("/me")
@blp.response(200, UserSchema)
def me() -> accounts.Caller:
    """The account the credential belongs to."""
    return context.current_user()


@blp.route("/me/api-key", methods=["POST"])
@blp.response(201, ApiKeySchema)
def rotate_api_key() -> accounts.Registered:
    """Issue a new API key; the old one, and every login token issued before, stop working
    at once."""
    return accounts.rotate_api_key(context.db(), context.current_user().id)
