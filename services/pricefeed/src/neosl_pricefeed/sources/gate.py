"""Gate spot: ``GET /api/v4/spot/tickers?currency_pair=NEO_USDT``.

Answers a list with one ticker, ``[{"currency_pair": "NEO_USDT", "last": "...", ...}]``;
``last`` is the last trade. Errors are ``{"label": "...", "message": "..."}``: HTTP 400 with
``INVALID_CURRENCY_PAIR`` for a pair it does not list, HTTP 429 with ``TOO_MANY_REQUESTS``.
USD pairs are priced in USDT.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    RATE_LIMITED,
    UNKNOWN_SYMBOL,
    Source,
    check_status,
    join,
    load_json,
    to_price,
)

_ERRORS: Mapping[str, tuple[str, str]] = {
    "INVALID_CURRENCY_PAIR": (UNKNOWN_SYMBOL, "does not list this pair (INVALID_CURRENCY_PAIR)"),
    "TOO_MANY_REQUESTS": (RATE_LIMITED, "is rate limiting us (TOO_MANY_REQUESTS)"),
}


class Gate(Source):
    name: ClassVar[str] = "gate"
    title: ClassVar[str] = "Gate"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return f"{base}_{quote}"

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v4/spot/tickers"), {"currency_pair": self.symbol(pair)}

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        if isinstance(data, dict) and "label" in data:
            self.check_code(status_code, str(data["label"]), _ERRORS)
        check_status(self.title, status_code)
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if data[0].get("currency_pair") != self.symbol(pair):
            raise self.error(BAD_RESPONSE, "answered for another pair")
        return to_price(self.title, data[0].get("last"))
