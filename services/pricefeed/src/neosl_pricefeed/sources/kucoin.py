"""KuCoin spot: ``GET /api/v1/market/orderbook/level1?symbol=NEO-USDT``.

Answers ``{"code": "200000", "data": {"time": 1, "sequence": "...", "price": "...", "size":
"...", "bestBid": "...", "bestAsk": "...", ...}}``; ``price`` is the last trade. A symbol it
does not list is *not* an error: HTTP 200 with ``"data": null``. Errors carry another
``code``: "429000" (rate limit, HTTP 429), "400100" (a bad parameter; the symbol is the only
one). USD pairs are priced in USDT.
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
    "400100": (UNKNOWN_SYMBOL, "rejected the symbol (code 400100)"),
    "429000": (RATE_LIMITED, "is rate limiting us (code 429000)"),
}


class Kucoin(Source):
    name: ClassVar[str] = "kucoin"
    title: ClassVar[str] = "KuCoin"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return f"{base}-{quote}"

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v1/market/orderbook/level1"), {"symbol": self.symbol(pair)}

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict) or "code" not in data:
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        self.check_code(status_code, str(data["code"]), _ERRORS, ok="200000")
        ticker = data.get("data")
        if ticker is None:
            raise self.error(UNKNOWN_SYMBOL, f"does not list {self.symbol(pair)}")
        if not isinstance(ticker, dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, ticker.get("price"))
