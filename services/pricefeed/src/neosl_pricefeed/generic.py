"""A tenant's own price source: one GET to its URL, the price at a JSON path in the answer.

The named sources (``neosl_pricefeed.sources``) each know their exchange's API; a generic
source is configured by the tenant and validated by ``neosl.pricefeeds.definitions``: a URL,
headers whose values may reference the tenant's secrets as ``{{secrets.NAME}}``, and a
``json_path`` (``neosl.pricefeeds.jsonpath``). The URL is the tenant's choice, so the request
goes through the SSRF guard of a function's ``fetch()``
(``neosl.functions.netguard.Fetcher``): an internal address is
refused however its name resolves, on every round.

Secret values travel only in the request's headers. No error carries them, nor anything of
the answer's body, since an upstream may fill its body with the headers it received.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from neosl.functions.fetching import Fetcher, FetchRequest
from neosl.pricefeeds import jsonpath
from neosl.pricefeeds.definitions import SECRET_REFERENCE
from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    MAX_BODY_BYTES,
    TIMEOUT,
    UNKNOWN_SYMBOL,
    UNREACHABLE,
    Quote,
    SourceError,
    check_status,
    to_price,
)

# The fetcher's own error for a request that ran out of time (``neosl.functions.netguard``).
_TIMED_OUT = "timed out"
_TOO_LARGE = "response body larger than"
# What the fetcher can send in a header value: Latin-1 without control characters.
_SENDABLE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def ask(
    fetcher: Fetcher, source: Mapping[str, Any], pair: str, secrets: Mapping[str, str]
) -> Quote:
    """The price a generic source gives, for ``pair`` (the source's URL decides what it is).

    ``source`` is a generic source as ``neosl.pricefeeds.definitions`` normalised it;
    ``secrets`` maps the tenant's secret names to their values. The fetcher's timeout bounds
    the whole exchange.

    Raises:
        SourceError: ``bad_response`` for a secret the headers reference that is not set or
            cannot be sent in a header (nothing is sent then), for an answer that is not JSON,
            larger than ``MAX_BODY_BYTES``, without a value at the path or whose value is no
            plausible price; ``rate_limited`` (429), ``maintenance`` (503), ``unknown_symbol``
            (404) and ``http_error`` (any other status outside 2xx); ``timeout``;
            ``unreachable`` when the guard refuses the address or no connection is made.
    """
    title = str(source["name"])
    try:
        path = jsonpath.parse(source["json_path"])
    except ValueError:
        raise SourceError(BAD_RESPONSE, f"{title} has an invalid json_path") from None
    request = FetchRequest(url=str(source["url"]), headers=_headers(title, source, secrets))
    started = time.monotonic()
    response = fetcher(request)
    latency_ms = round((time.monotonic() - started) * 1000)
    if response.error is not None:
        raise _failure(title, response.error)
    if response.status == 404:
        raise SourceError(UNKNOWN_SYMBOL, f"{title} answered HTTP 404 (nothing at that URL)")
    check_status(title, response.status)
    body = response.body.encode()
    if len(body) > MAX_BODY_BYTES:
        raise SourceError(BAD_RESPONSE, f"{title} sent an answer too large to be a ticker")
    try:
        document = json.loads(body, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError):
        raise SourceError(BAD_RESPONSE, f"{title} answered something that is not JSON") from None
    try:
        value = path.find(document)
    except LookupError as exc:
        raise SourceError(BAD_RESPONSE, f"{title} sent no price at {path}: {exc}") from None
    return Quote(source=title, pair=pair, price=to_price(title, value), latency_ms=latency_ms)


def _headers(title: str, source: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, str]:
    """The source's headers with its secret references filled in.

    Raises:
        SourceError: ``bad_response``, naming the secret (never its value): not set, or a
            value a header cannot carry.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = secrets.get(name)
        if value is None:
            raise SourceError(BAD_RESPONSE, f"{title}: secret {name} is not set")
        if not _SENDABLE.fullmatch(value):
            raise SourceError(
                BAD_RESPONSE,
                f"{title}: secret {name} cannot be sent in a header "
                "(it has a line break, another control character or a non-Latin-1 character)",
            )
        return value

    headers = {
        name: SECRET_REFERENCE.sub(fill, str(value))
        for name, value in source.get("headers", {}).items()
    }
    present = {name.lower() for name in headers}
    if "accept" not in present:
        headers["Accept"] = "application/json"
    if "user-agent" not in present:
        headers["User-Agent"] = "neosl-pricefeed"
    return headers


def _failure(title: str, error: str) -> SourceError:
    """The fetcher's refusal or failure as a source error (its text is safe to show)."""
    if error == _TIMED_OUT:
        return SourceError(TIMEOUT, f"{title} did not answer in time")
    if error.startswith(_TOO_LARGE):
        return SourceError(BAD_RESPONSE, f"{title} sent an answer too large to be a ticker")
    return SourceError(UNREACHABLE, f"{title} could not be reached: {error}")
