"""Binance spot: ``GET /api/v3/ticker/price?symbol=NEOUSDT``; markets from ``GET
/api/v3/exchangeInfo``.

Answers ``{"symbol": "NEOUSDT", "price": "12.34000000"}``. The market list is ``{"symbols":
[{"symbol": "NEOUSDT", "status": "TRADING", "baseAsset": "NEO", "quoteAsset": "USDT", ...}]}``
(several megabytes); a market whose ``status`` is not "TRADING" (e.g. "BREAK") is closed.
Errors are ``{"code": -1121, "msg": "Invalid symbol."}`` with HTTP 400; the request-weight
limit is HTTP 429 (code -1003) and an IP ban for ignoring it HTTP 418. binance.com has no USD
markets: USD pairs are priced in USDT.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    MAINTENANCE,
    RATE_LIMITED,
    UNKNOWN_SYMBOL,
    Market,
    Source,
    check_status,
    join,
    load_json,
    open_markets,
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

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v3/ticker/price"), {"symbol": symbol}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        data = self._answer(status_code, body, "price")
        if not isinstance(data, dict) or data.get("symbol") != symbol:
            raise self.error(BAD_RESPONSE, "answered for another symbol or in another shape")
        return to_price(self.title, data.get("price"))

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v3/exchangeInfo"), {}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        data = self._answer(status_code, body, "symbols")
        rows = data.get("symbols") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise self.error(BAD_RESPONSE, "answered a market list in an unexpected shape")
        return open_markets(
            rows, "baseAsset", "quoteAsset", "symbol", lambda row: row.get("status") == "TRADING"
        )

    def _answer(self, status_code: int, body: bytes, key: str) -> object:
        """The decoded answer, once it is not an error; ``key`` is what a good one carries.

        Raises:
            SourceError: the error code or status the answer carries.
        """
        if status_code == 418:
            raise self.error(RATE_LIMITED, "has banned our IP for a while (HTTP 418)")
        data = load_json(self.title, status_code, body)
        if isinstance(data, dict) and "code" in data and key not in data:
            self.check_code(status_code, data["code"], _ERRORS)
        check_status(self.title, status_code)
        return data
