"""Every request body is JSON, checked and parsed once, before authentication and any view.

One place for every route, present and future: a body sent as anything but JSON is a 415; a
JSON body that is not UTF-8, not valid JSON or nested deeper than ``jsonbody.MAX_DEPTH`` is a
400, and one holding a string no column can store a 422 (``jsonbody.loads``), whatever the
route does with it (even a route that ignores its body, and the webhook route, whose service
checks the signature on the raw bytes: they stay cached and unchanged).
Routes' argument parsing reads the value parsed here (``blueprint.StrictParser``) instead of
parsing the bytes again.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request
from werkzeug.exceptions import UnsupportedMediaType

from neosl_api import jsonbody

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PARSED = "nsl_json_body"


def init_app(app: Flask) -> None:
    app.before_request(_check_body)


def _check_body() -> None:
    if not _has_body():
        return
    if not request.is_json:
        if request.method in _BODY_METHODS:
            raise UnsupportedMediaType(
                "request bodies must be JSON (Content-Type: application/json)"
            )
        return
    # Cached: argument parsing and the webhook route read these same bytes.
    data = request.get_data(cache=True)
    if data.strip():
        # A blank body is left to the route (an empty webhook delivery is null; a route with
        # a body schema answers its usual 400).
        setattr(g, _PARSED, (jsonbody.loads(data),))


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding", "") == "chunked"


def parsed() -> tuple[Any] | None:
    """The request's JSON body as parsed by the check (in a 1-tuple, as it may be null),
    or None when the request has no (non-blank) JSON body."""
    value: tuple[Any] | None = g.get(_PARSED)
    return value
