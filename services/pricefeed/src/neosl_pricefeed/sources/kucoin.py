"""KuCoin spot: ``GET /api/v1/market/orderbook/level1?symbol=NEO-USDT``; markets from ``GET
/api/v2/symbols``.

Answers ``{"code": "200000", "data": {"time": 1, "sequence": "...", "price": "...", "size":
"...", "bestBid": "...", "bestAsk": "...", ...}}``; ``price`` is the last trade. A symbol it
does not list is *not* an error: HTTP 200 with ``"data": null``. The market list has the same
envelope, ``{"code": "200000", "data": [{"symbol": "BTC-USDT", "baseCurrency": "BTC",
"quoteCurrency": "USDT", "enableTrading": true, ...}]}``. Errors carry another ``code``:
"429000" (rate limit, HTTP 429), "400100" (a bad parameter; the symbol is the only one). USD
pairs are priced in USDT.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    RATE_LIMITED,
    UNKNOWN_SYMBOL,
    Market,
    Source,
    check_status,
    join,
    load_json,
    open_markets,
    safe_code,
    to_price,
)

_ERRORS: Mapping[str, tuple[str, str]] = {
    "400100": (UNKNOWN_SYMBOL, "rejected the symbol (code 400100)"),
    "429000": (RATE_LIMITED, "is rate limiting us (code 429000)"),
}


class Kucoin(Source):
    name: ClassVar[str] = "kucoin"
    title: ClassVar[str] = "KuCoin"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return f"{base}-{quote}"

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v1/market/orderbook/level1"), {"symbol": symbol}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        ticker = self._data(status_code, body)
        if ticker is None:
            raise self.error(UNKNOWN_SYMBOL, f"does not list {safe_code(symbol)}")
        if not isinstance(ticker, dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, ticker.get("price"))

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v2/symbols"), {}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        rows = self._data(status_code, body)
        if not isinstance(rows, list):
            raise self.error(BAD_RESPONSE, "answered a market list in an unexpected shape")
        return open_markets(
            rows,
            "baseCurrency",
            "quoteCurrency",
            "symbol",
            lambda row: row.get("enableTrading") is True,
        )

    def _data(self, status_code: int, body: bytes) -> object:
        """The ``data`` of an answer whose code is "200000".

        Raises:
            SourceError: the error the code or status stands for, or ``bad_response``
                without a code.
        """
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict) or "code" not in data:
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        self.check_code(status_code, str(data["code"]), _ERRORS, ok="200000")
        return data.get("data")
