"""OKX: ``GET /api/v5/market/ticker?instId=NEO-USDT``.

Answers ``{"code": "0", "msg": "", "data": [{"instId": "NEO-USDT", "last": "...", ...}]}``;
``last`` is the last trade. Any other ``code`` is an error: "51001" (instrument does not
exist), "50011" (rate limit, HTTP 429), "50001" (service temporarily unavailable, HTTP 503).
USD pairs are priced in USDT, OKX's deepest spot markets.
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

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/api/v5/market/ticker"), {"instId": self.symbol(pair)}

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict):
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if "code" not in data:
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered without a code")
        self.check_code(status_code, str(data["code"]), _ERRORS, ok="0")
        rows = data.get("data")
        if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if rows[0].get("instId") != self.symbol(pair):
            raise self.error(BAD_RESPONSE, "answered for another instrument")
        return to_price(self.title, rows[0].get("last"))
