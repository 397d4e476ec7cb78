"""Every endpoint requires a bearer credential unless its view is marked public.

Deny by default: a new route is protected without anyone remembering to protect it. A view
is public only by an explicit mark: ``@public`` on our own views, ``mark_public(app, …)``
with exact endpoint names for views that other packages register (the OpenAPI document,
Swagger UI, static files). Never by a name prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, g, request

from neosl.errors import Unauthorized
from neosl_api import context
from neosl_api.services import accounts
from neosl_api.services.accounts import Caller

_PUBLIC_ATTR = "_neosl_public"


def public[F: Callable[..., Any]](view: F) -> F:
    setattr(view, _PUBLIC_ATTR, True)
    return view


def mark_public(app: Flask, *endpoints: str) -> None:
    """Make these exact endpoints public (views registered by other packages).

    Raises:
        KeyError: no such endpoint (a renamed endpoint must not silently stay protected
            or, worse, leave a guess in place).
    """
    for endpoint in endpoints:
        view = app.view_functions[endpoint]
        app.view_functions[endpoint] = _public_wrapper(view)


def _public_wrapper(view: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    wrapped.__name__ = getattr(view, "__name__", "view")
    return public(wrapped)


def _is_public(app: Flask, endpoint: str | None) -> bool:
    if endpoint is None:
        # No route matched: let routing answer 404/405 without asking for credentials.
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


def caller_if_any() -> Caller | None:
    """In a public view: the caller, when the request carries a credential (a bad one is
    still 401); None without one."""
    if not request.headers.get("Authorization"):
        return None
    caller: Caller = accounts.authenticate(context.db(), context.settings(), _bearer())
    return caller


def init_app(app: Flask) -> None:
    @app.before_request
    def authenticate() -> None:
        if request.method == "OPTIONS" or _is_public(app, request.endpoint):
            return
        g.user = accounts.authenticate(context.db(), context.settings(), _bearer())
