"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"}}``.

No HTML page and no stack trace ever reaches the client; unexpected errors are logged
here with their traceback and answered with a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from redis import RedisError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from neosl.errors import RateLimited, ServiceError

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    status: int,
    message: str,
    details: dict[str, Any] | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "error": {
            "code": code or CODES.get(status, "error"),
            "message": message,
            "details": details,
        }
    }
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="neosl"'
    return response


def _webargs_details(data: dict[str, Any]) -> dict[str, Any] | None:
    # webargs groups messages by location ({"json": {...}, "query": {...}}); callers care
    # about fields, so one location is flattened and several keep their prefix.
    messages = data.get("messages")
    if not isinstance(messages, dict) or not messages:
        return None
    if len(messages) == 1:
        inner = next(iter(messages.values()))
        return inner if isinstance(inner, dict) else {"_body": inner}
    return {
        f"{loc}.{field}": msgs for loc, fields in messages.items() for field, msgs in fields.items()
    }


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    details = _webargs_details(data)
    message = exc.description or "error"
    if status == 422:
        message = "the request did not pass validation"
    elif status == 400 and details is not None:
        message = "malformed request body"
    headers = {"Allow": exc.response.headers["Allow"]} if status == 405 and exc.response else None
    if status == 405 and headers is None and hasattr(exc, "valid_methods") and exc.valid_methods:
        headers = {"Allow": ", ".join(exc.valid_methods)}
    return error_response(status, message, details, headers=headers)


def handle_service_error(exc: ServiceError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_response(exc.status, exc.message, exc.details, exc.code, headers)


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, RedisError | OperationalError):
        # The database or broker is down or restarting: a retry later can succeed.
        log.error("dependency unavailable: %s", exc)
        return error_response(503, "service temporarily unavailable", headers={"Retry-After": "5"})
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal server error")


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(Exception, handle_unexpected)
