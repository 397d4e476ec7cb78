"""The shape of an outbound HTTP request a function makes, and of its answer.

The sandbox (``neosl.functions.sandbox``) turns a function's ``fetch(url, init)`` into a
``FetchRequest``; a fetcher (``neosl.functions.netguard.Fetcher``) performs it behind the SSRF
guard and answers a ``FetchResponse``. A fetcher never raises: a refusal or a network failure
is a response with ``error`` set, which the function sees as a rejected promise (TypeError).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Request and response bodies a function may send or receive.
MAX_BODY_BYTES = 2 * 1024 * 1024
# Requests one execution may make.
MAX_REQUESTS_PER_EXECUTION = 10


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
