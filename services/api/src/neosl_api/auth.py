"""Every endpoint requires a bearer credential unless its view is marked ``@public``.

Deny by default: a new route is protected without anyone remembering to protect it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, g, request

from neosl.errors import Unauthorized
from neosl_api import context
from neosl_api.services import accounts

_PUBLIC_ATTR = "_neosl_public"
# The OpenAPI document, Swagger UI and static files are served by flask-smorest/Flask.
_PUBLIC_BLUEPRINTS = ("api-docs.", "static")


def public[F: Callable[..., Any]](view: F) -> F:
    setattr(view, _PUBLIC_ATTR, True)
    return view


def _is_public(app: Flask, endpoint: str | None) -> bool:
    if endpoint is None:
        # No route matched: let routing answer 404/405 without asking for credentials.
        return True
    if endpoint.startswith(_PUBLIC_BLUEPRINTS):
        return True
    view = app.view_functions.get(endpoint)
    target = getattr(view, "view_class", view)
    return bool(getattr(target, _PUBLIC_ATTR, False))


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("missing bearer credential (Authorization: Bearer <api key or token>)")
    return value.strip()


def init_app(app: Flask) -> None:
    @app.before_request
    def authenticate() -> None:
        if request.method == "OPTIONS" or _is_public(app, request.endpoint):
            return
        g.user = accounts.authenticate(context.db(), context.settings(), _bearer())
