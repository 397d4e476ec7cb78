"""Bitfinex: ``GET /v2/ticker/tNEOUSD``.

Answers a bare array of JSON numbers, ``[BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE,
DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW]``. Errors are arrays too, ``["error",
CODE, "message"]``: 10020 for a symbol it does not list (HTTP 500), 11010 for its rate limit
(HTTP 429), 11000 and 20060 while the platform is not ready or in maintenance. Trading pair
symbols are "t" + base + quote, with a colon between them when either code is longer than
three letters. Bitfinex has real USD markets.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    MAINTENANCE,
    RATE_LIMITED,
    UNKNOWN_SYMBOL,
    Source,
    check_status,
    join,
    load_json,
    to_price,
)

_LAST_PRICE = 6
_ERRORS: Mapping[int, tuple[str, str]] = {
    10020: (UNKNOWN_SYMBOL, "does not list this symbol (error 10020)"),
    11010: (RATE_LIMITED, "is rate limiting us (error 11010)"),
    11000: (MAINTENANCE, "is not ready (error 11000)"),
    20060: (MAINTENANCE, "is in maintenance (error 20060)"),
}


class Bitfinex(Source):
    name: ClassVar[str] = "bitfinex"
    title: ClassVar[str] = "Bitfinex"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        if len(base) > 3 or len(quote) > 3:
            return f"t{base}:{quote}"
        return f"t{base}{quote}"

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, f"/v2/ticker/{self.symbol(pair)}"), {}

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        if isinstance(data, list) and data[:1] == ["error"]:
            self.check_code(status_code, data[1] if len(data) > 1 else None, _ERRORS)
        check_status(self.title, status_code)
        if data == []:
            raise self.error(UNKNOWN_SYMBOL, f"has no ticker for {self.symbol(pair)}")
        if not isinstance(data, list) or len(data) <= _LAST_PRICE:
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, data[_LAST_PRICE])
