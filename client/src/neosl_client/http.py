"""The SDK's HTTP layer: one connection pool, a timeout on every call, retries only where a
retry cannot do the work twice, and the API's errors raised as exceptions.

A call is retried (with backoff, or after the ``Retry-After`` the API gave) when

- the request never left (the connection could not be made), whatever the method;
- the API refused it before doing anything (429, 503), whatever the method;
- it is idempotent (GET, PUT, DELETE, or a POST carrying an ``Idempotency-Key``, whose
  retries carry the same key) and the connection broke or timed out, or a proxy answered
  502 or 504.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

import httpx

from neosl_client import errors

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
# The longest pause between two attempts, whatever the API asks.
MAX_BACKOFF = 30.0
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_REFUSED = frozenset({429, 503})
_PROXY_FAILURES = frozenset({502, 504})

F = TypeVar("F", bound=Callable[..., Any])


def route(method: str, path: str) -> Callable[[F], F]:
    """Marks a method as the SDK's call of the API's route ``method path`` (as the OpenAPI
    document writes it); a test checks every route has one."""

    def mark(fn: F) -> F:
        fn.__neosl_route__ = (method.upper(), path)  # type: ignore[attr-defined]
        return fn

    return mark


def new_idempotency_key() -> str:
    """A fresh key for one logical call (its retries reuse it)."""
    return f"nsl-{uuid.uuid4().hex}"


class Http:
    """Sends the SDK's requests to one API (``base_url``) with one credential."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "neosl-client",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive: no call goes without one")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep: Callable[[float], None] = time.sleep
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send one call (retried as the module says); the answer if it is a success.

        Raises:
            ApiError: the API answered an error (its subclass by status).
            TransportError: no answer, after the retries allowed.
        """
        method = method.upper()
        sent_headers = dict(headers or {})
        if authenticated and self.token:
            sent_headers["Authorization"] = f"Bearer {self.token}"
        if idempotency_key is not None:
            sent_headers["Idempotency-Key"] = idempotency_key
        idempotent = method in _IDEMPOTENT or idempotency_key is not None
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = self._client.request(
                    method,
                    path,
                    params=query,
                    json=json,
                    content=content,
                    headers=sent_headers,
                    timeout=timeout if timeout is not None else self.timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Never sent: safe to try again whatever the call.
                if attempt >= self.retries:
                    raise errors.TransportError(f"{method} {path}: {exc}") from exc
            except httpx.TransportError as exc:
                if not idempotent or attempt >= self.retries:
                    raise errors.TransportError(
                        f"{method} {path}: {exc}"
                        + ("" if idempotent else " (not retried: the call may have been done)")
                    ) from exc
            else:
                status = response.status_code
                retry = status in _REFUSED or (idempotent and status in _PROXY_FAILURES)
                if response.is_success or not retry or attempt >= self.retries:
                    if not response.is_success:
                        raise _api_error(response)
                    return response
                self._sleep(self._pause(attempt, response))
                attempt += 1
                continue
            self._sleep(self._pause(attempt, None))
            attempt += 1

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request``, answering the JSON body (None for 204)."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = 100
    ) -> Iterator[Any]:
        """Every item of a cursor-paginated list (``{"items": [...], "next_cursor": ...}``),
        fetching pages as the iteration goes."""
        query = dict(params or {})
        query["limit"] = page_size
        cursor: str | None = None
        while True:
            if cursor is not None:
                query["cursor"] = cursor
            page = self.json("GET", path, params=query)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def _pause(self, attempt: int, response: httpx.Response | None) -> float:
        asked = _retry_after(response) if response is not None else None
        pause = asked if asked is not None else self.backoff * 2**attempt
        return max(0.0, min(pause, MAX_BACKOFF))


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _api_error(response: httpx.Response) -> errors.ApiError:
    status = response.status_code
    code, message, details = "http_error", response.reason_phrase or f"HTTP {status}", None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = cast(dict[str, Any], body["error"])
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details") if isinstance(error.get("details"), dict) else None
    return errors.error_class(status)(
        status,
        code,
        message,
        details,
        response.headers.get("X-Request-Id"),
        _retry_after(response),
    )


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds of the answer's ``Retry-After``, if it gives a number."""
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
