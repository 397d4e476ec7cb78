"""OKX: ``GET /api/v5/market/ticker?instId=NEO-USDT``; markets from ``GET
/api/v5/public/instruments?instType=SPOT``.

Answers ``{"code": "0", "msg": "", "data": [{"instId": "NEO-USDT", "last": "...", ...}]}``;
``last`` is the last trade. The market list has the same envelope, ``{"code": "0", "msg": "",
"data": [{"instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT", "state": "live",
...}]}``; an instrument in another state ("suspend", "preopen") is closed. Any other ``code``
is an error: "51001" (instrument does not exist), "50011" (rate limit, HTTP 429), "50001"
(service temporarily unavailable, HTTP 503). USD pairs are priced in USDT, OKX's deepest spot
markets.
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
    to_price,
)

_ERRORS: Mapping[str, tuple[str, str]] = {
    "51001": (UNKNOWN_SYMBOL, "does not list this instrument (code 51001)"),
    "50011": (RATE_LIMITED, "is rate limiting us (code 50011)"),
    "50061": (RATE_LIMITED, "is rate limiting us (code 50061)"),
    "50001": (MAINTENANCE, "is temporarily unavailable (code 50001)"),
    "50005": (MAINTENANCE, "says its API is offline (code 50005)"),
    "50013": (MAINTENANCE, "says its systems are busy (code 50013)"),
}


class Okx(Source):
    name: ClassVar[str] = "okx"
    title: ClassVar[str] = "OKX"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return f"{base}-{quote}"

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v5/market/ticker"), {"instId": symbol}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        rows = self._data(status_code, body)
        if len(rows) != 1 or not isinstance(rows[0], dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if rows[0].get("instId") != symbol:
            raise self.error(BAD_RESPONSE, "answered for another instrument")
        return to_price(self.title, rows[0].get("last"))

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v5/public/instruments"), {"instType": "SPOT"}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        return open_markets(
            self._data(status_code, body),
            "baseCcy",
            "quoteCcy",
            "instId",
            lambda row: row.get("state") == "live",
        )

    def _data(self, status_code: int, body: bytes) -> list[object]:
        """The ``data`` list of an answer whose code is "0".

        Raises:
            SourceError: the error the code or status stands for, or ``bad_response``
                without a code or a data list.
        """
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict):
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if "code" not in data:
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered without a code")
        self.check_code(status_code, str(data["code"]), _ERRORS, ok="0")
        rows = data.get("data")
        if not isinstance(rows, list):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return rows
