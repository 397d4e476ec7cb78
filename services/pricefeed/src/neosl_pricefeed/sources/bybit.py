"""Bybit spot: ``GET /v5/market/tickers?category=spot&symbol=BTCUSDT``; markets from ``GET
/v5/market/instruments-info?category=spot``.

Answers ``{"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [{"symbol":
"BTCUSDT", "lastPrice": "...", ...}]}, "retExtInfo": {}, "time": 1}``. The market list has the
same envelope, its ``list`` holding ``{"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin":
"USDT", "status": "Trading", ...}`` (all spot markets in one page); another status
("PreLaunch", "Closed") is closed. Errors are HTTP 200 with a non-zero ``retCode``: 10001 for
a symbol it does not list ("Not supported symbols"; the symbol is the only parameter we vary),
10006 and 10018 for rate limits, 10016 while its service restarts. Its IP rate limit is HTTP
403. USD pairs are priced in USDT.
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
    Market,
    Source,
    check_status,
    join,
    load_json,
    open_markets,
    safe_code,
    to_price,
)

_ERRORS: Mapping[int, tuple[str, str]] = {
    10001: (UNKNOWN_SYMBOL, "does not list this symbol (retCode 10001)"),
    10006: (RATE_LIMITED, "is rate limiting us (retCode 10006)"),
    10018: (RATE_LIMITED, "is rate limiting our IP (retCode 10018)"),
    10000: (MAINTENANCE, "timed out on its side (retCode 10000)"),
    10016: (MAINTENANCE, "is restarting or failing (retCode 10016)"),
}


class Bybit(Source):
    name: ClassVar[str] = "bybit"
    title: ClassVar[str] = "Bybit"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return base + quote

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        params = {"category": "spot", "symbol": symbol}
        return join(base_url, "/v5/market/tickers"), params

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        rows = self._list(status_code, body)
        if rows == []:
            raise self.error(UNKNOWN_SYMBOL, f"has no ticker for {safe_code(symbol)}")
        if len(rows) != 1 or not isinstance(rows[0], dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if rows[0].get("symbol") != symbol:
            raise self.error(BAD_RESPONSE, "answered for another symbol")
        return to_price(self.title, rows[0].get("lastPrice"))

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/v5/market/instruments-info"), {"category": "spot"}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        return open_markets(
            self._list(status_code, body),
            "baseCoin",
            "quoteCoin",
            "symbol",
            lambda row: row.get("status") == "Trading",
        )

    def _list(self, status_code: int, body: bytes) -> list[object]:
        """The ``result.list`` of an answer whose ``retCode`` is 0.

        Raises:
            SourceError: the error the code or status stands for, or ``bad_response``
                without a code or a list.
        """
        if status_code == 403:
            raise self.error(RATE_LIMITED, "is rate limiting our IP (HTTP 403)")
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict) or "retCode" not in data:
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        self.check_code(status_code, data["retCode"], _ERRORS, ok=0, called="retCode")
        result = data.get("result")
        rows = result.get("list") if isinstance(result, dict) else None
        if not isinstance(rows, list):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return rows
