"""Gate spot: ``GET /api/v4/spot/tickers?currency_pair=NEO_USDT``; markets from ``GET
/api/v4/spot/currency_pairs``.

Answers a list with one ticker, ``[{"currency_pair": "NEO_USDT", "last": "...", ...}]``;
``last`` is the last trade. The market list is a bare array too, ``[{"id": "ETH_USDT",
"base": "ETH", "quote": "USDT", "trade_status": "tradable", ...}]``; another status
("untradable", or "buyable"/"sellable" for one side only) is closed. Errors are ``{"label":
"...", "message": "..."}``: HTTP 400 with ``INVALID_CURRENCY_PAIR`` for a pair it does not
list, HTTP 429 with ``TOO_MANY_REQUESTS``. USD pairs are priced in USDT.
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

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v4/spot/tickers"), {"currency_pair": symbol}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        rows = self._rows(status_code, body)
        if len(rows) != 1 or not isinstance(rows[0], dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if rows[0].get("currency_pair") != symbol:
            raise self.error(BAD_RESPONSE, "answered for another pair")
        return to_price(self.title, rows[0].get("last"))

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v4/spot/currency_pairs"), {}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        return open_markets(
            self._rows(status_code, body),
            "base",
            "quote",
            "id",
            lambda row: row.get("trade_status") == "tradable",
        )

    def _rows(self, status_code: int, body: bytes) -> list[object]:
        """The list an answer is, once it is not an error.

        Raises:
            SourceError: the error the label or status stands for, or ``bad_response`` for
                anything but a list.
        """
        data = load_json(self.title, status_code, body)
        if isinstance(data, dict) and "label" in data:
            self.check_code(status_code, str(data["label"]), _ERRORS)
        check_status(self.title, status_code)
        if not isinstance(data, list):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return data
