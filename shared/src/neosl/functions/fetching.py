"""The shape of an outbound HTTP request a function makes, and of its answer.

The sandbox (``neosl.functions.sandbox``) turns a function's ``fetch(url, init)`` into a
``FetchRequest``; a fetcher (``neosl.functions.netguard.Fetcher``) performs it behind the SSRF
guard and answers a ``FetchResponse``. A fetcher never raises: a refusal or a network failure
is a response with ``error`` set, which the function sees as a rejected promise (TypeError).

A request over one of the bounds below is refused before it leaves the sandbox, and again by
the pool when it receives one (``refusal``): a function cannot make the executor hold
megabytes of URL or headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Request and response bodies a function may send or receive.
MAX_BODY_BYTES = 2 * 1024 * 1024
# Requests one execution may make.
MAX_REQUESTS_PER_EXECUTION = 10
# A request's URL, in UTF-8 bytes.
MAX_URL_BYTES = 8 * 1024
# A request's headers in all: names and values in UTF-8, plus 4 bytes per header (": " and
# the line end), as they go on the wire.
MAX_HEADERS_BYTES = 32 * 1024
# A request's method (HTTP's are at most 7 letters).
MAX_METHOD_BYTES = 32

# What a function's fetch rejects with (TypeError) for each bound.
URL_TOO_LONG = f"fetch: the URL is longer than {MAX_URL_BYTES // 1024} KB"
HEADERS_TOO_LARGE = f"fetch: the headers are larger than {MAX_HEADERS_BYTES // 1024} KB in all"
METHOD_TOO_LONG = f"fetch: the method is longer than {MAX_METHOD_BYTES} characters"
BODY_TOO_LARGE = f"fetch: the request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB"


@dataclass(frozen=True)
class FetchRequest:
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class FetchResponse:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    # Why there is no response (refused by the guard, timeout, too large, connection error);
    # safe to show to the tenant.
    error: str | None = None
    # The URL finally answered, after redirects.
    url: str = ""


Fetcher = Callable[[FetchRequest], FetchResponse]


def utf8_size(text: str) -> int:
    """``text``'s size in UTF-8; a lone surrogate (from JavaScript) counts its 3 bytes."""
    return len(text.encode("utf-8", "surrogatepass"))


def headers_size(headers: Mapping[str, str]) -> int:
    """The size of ``headers`` as ``MAX_HEADERS_BYTES`` counts it."""
    return sum(utf8_size(name) + utf8_size(value) + 4 for name, value in headers.items())


def refusal(url: str, method: str, headers: Mapping[str, str], body: str | None) -> str | None:
    """Why a request over one of the bounds above is refused (the message the function's
    fetch rejects with), or None when it is within them all."""
    # Characters first: a UTF-8 size is never below the length, and a long text is never
    # encoded just to be refused.
    if len(url) > MAX_URL_BYTES or utf8_size(url) > MAX_URL_BYTES:
        return URL_TOO_LONG
    if len(method) > MAX_METHOD_BYTES or utf8_size(method) > MAX_METHOD_BYTES:
        return METHOD_TOO_LONG
    if (
        sum(len(name) + len(value) + 4 for name, value in headers.items()) > MAX_HEADERS_BYTES
        or headers_size(headers) > MAX_HEADERS_BYTES
    ):
        return HEADERS_TOO_LARGE
    if body is not None and (len(body) > MAX_BODY_BYTES or utf8_size(body) > MAX_BODY_BYTES):
        return BODY_TOO_LARGE
    return None
