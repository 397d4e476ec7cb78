"""What the SDK raises: the API's refusals, carrying its error code and details, and
transport failures."""

from __future__ import annotations

from typing import Any


class NeoslError(Exception):
    """Anything the SDK raises."""


class TransportError(NeoslError):
    """The API could not be reached, or did not answer in time (after the retries an
    idempotent call is allowed)."""


class ApiError(NeoslError):
    """The API answered with an error: ``status`` (HTTP), ``code`` (e.g. ``validation_error``),
    ``message``, ``details`` (per field, or other facts) and the ``request_id`` to quote."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400: the body is not JSON, or malformed."""


class Unauthorized(ApiError):
    """401: no, an unknown or a revoked credential (or a bad webhook signature)."""


class PaymentRequired(ApiError):
    """402: the tenant's gas account cannot pay for the work."""


class Forbidden(ApiError):
    """403: not the tenant's to change."""


class NotFound(ApiError):
    """404: no such resource for this tenant."""


class Conflict(ApiError):
    """409: the resource's state forbids it (paused, exists already, in use...)."""


class PayloadTooLarge(ApiError):
    """413: the body is over the API's limit."""


class ValidationError(ApiError):
    """422: a field is invalid; ``details`` says which and why."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` seconds, when the API said."""


class ServerError(ApiError):
    """5xx: the service failed or is unavailable."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: PaymentRequired,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """The exception class of an error answer with HTTP ``status``."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)
