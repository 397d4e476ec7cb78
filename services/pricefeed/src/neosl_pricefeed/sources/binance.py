"""Binance spot: ``GET /api/v3/ticker/price?symbol=NEOUSDT``.

Answers ``{"symbol": "NEOUSDT", "price": "12.34000000"}``. Errors are ``{"code": -1121,
"msg": "Invalid symbol."}`` with HTTP 400; the request-weight limit is HTTP 429 (code -1003)
and an IP ban for ignoring it HTTP 418. binance.com has no USD markets: USD pairs are priced
in USDT.
"""

from __future__ import annotations

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

_ERRORS = {
    -1121: (UNKNOWN_SYMBOL, "does not list this symbol"),
    -1003: (RATE_LIMITED, "is rate limiting us (code -1003)"),
    -1008: (MAINTENANCE, "is overloaded (code -1008)"),
    -1016: (MAINTENANCE, "says the service is unavailable (code -1016)"),
}


class Binance(Source):
    name: ClassVar[str] = "binance"
    title: ClassVar[str] = "Binance"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return base + quote

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v3/ticker/price"), {"symbol": self.symbol(pair)}

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        if status_code == 418:
            raise self.error(RATE_LIMITED, "has banned our IP for a while (HTTP 418)")
        data = load_json(self.title, status_code, body)
        if isinstance(data, dict) and "code" in data and "price" not in data:
            self.check_code(status_code, data["code"], _ERRORS)
        check_status(self.title, status_code)
        if not isinstance(data, dict) or data.get("symbol") != self.symbol(pair):
            raise self.error(BAD_RESPONSE, "answered for another symbol or in another shape")
        return to_price(self.title, data.get("price"))
