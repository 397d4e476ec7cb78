"""Tenant secrets: write-only values that functions granted them read at run time."""

from __future__ import annotations

from typing import Any

from neosl.models import Secret
from neosl_api import context
from neosl_api.blueprint import Blueprint
from neosl_api.pagination import Page
from neosl_api.schemas.common import PageArgsSchema, page_of
from neosl_api.schemas.secrets import NAME_PARAMETER, SecretSchema, SecretValueSchema
from neosl_api.services import secrets

blp = Blueprint("secrets", __name__, url_prefix="/v1/secrets", description="Secrets")


@blp.route("/<name>", methods=["PUT"], parameters=[NAME_PARAMETER])
@blp.arguments(SecretValueSchema)
@blp.response(201, SecretSchema)
@blp.alt_response(200, schema=SecretSchema, description="A new version of an existing secret")
def put_secret(body: dict[str, Any], name: str) -> tuple[Secret, int]:
    """Store a secret (201), or a new version of it (200). The value is never shown again.

    `name` is 1-100 characters of letters, digits and `_`; the value at most 4096 bytes
    (UTF-8). Each version is encrypted with its own key and replaces the previous one;
    functions granted the name receive it when they run.
    """
    stored = secrets.put_secret(
        context.db(),
        context.settings().secrets_keys,
        context.current_user().id,
        name,
        body["value"],
    )
    return stored.secret, 201 if stored.created else 200


@blp.route("", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_of(SecretSchema))
def list_secrets(args: dict[str, Any]) -> Page[Secret]:
    """Your secrets' names and versions, newest first; never their values."""
    return secrets.list_secrets(
        context.db(), context.current_user().id, args["limit"], args["cursor"]
    )


@blp.route("/<name>", methods=["GET"], parameters=[NAME_PARAMETER])
@blp.response(200, SecretSchema)
def get_secret(name: str) -> Secret:
    """One secret's name, version and times; never its value."""
    return secrets.get_secret(context.db(), context.current_user().id, name)


@blp.route("/<name>", methods=["DELETE"], parameters=[NAME_PARAMETER])
@blp.response(204)
def delete_secret(name: str) -> None:
    """Delete a secret; functions granted it no longer receive it."""
    secrets.delete_secret(context.db(), context.current_user().id, name)
