"""HTX (formerly Huobi): ``GET /market/detail/merged?symbol=neousdt``; markets from ``GET
/v1/common/symbols``.

Answers ``{"ch": "market.neousdt.detail.merged", "status": "ok", "ts": 1, "tick": {"close":
12.34, "bid": [...], "ask": [...], ...}}`` with JSON numbers; ``tick.close`` is the last
trade. The market list is ``{"status": "ok", "data": [{"symbol": "btcusdt", "base-currency":
"btc", "quote-currency": "usdt", "state": "online", ...}]}``; another state ("offline",
"suspend", "pre-online") is closed. Errors are HTTP 200 with ``"status": "error"`` and an
``err-code``: "invalid-parameter" with err-msg "invalid symbol" for a symbol it does not list,
"base-request-exceed-frequency-limit" for its rate limit, "system-maintenance". Symbols and
asset codes are lower case; USD pairs are priced in USDT.
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

_ERRORS: Mapping[str, tuple[str, str]] = {
    "base-symbol-error": (UNKNOWN_SYMBOL, "does not list this symbol"),
    "base-symbol-trade-disabled": (UNKNOWN_SYMBOL, "has stopped trading this symbol"),
    "base-request-exceed-frequency-limit": (RATE_LIMITED, "is rate limiting us"),
    "system-maintenance": (MAINTENANCE, "is in maintenance"),
}
# "invalid-parameter" covers every bad parameter; these messages single out the symbol.
_UNKNOWN_SYMBOL_MESSAGES = frozenset({"invalid symbol", "symbol trade not open now"})


class Htx(Source):
    name: ClassVar[str] = "htx"
    title: ClassVar[str] = "HTX"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return (base + quote).lower()

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/market/detail/merged"), {"symbol": symbol}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        data = self._answer(status_code, body, symbol)
        if data.get("ch") != f"market.{symbol}.detail.merged":
            raise self.error(BAD_RESPONSE, "answered for another symbol")
        tick = data.get("tick")
        if not isinstance(tick, dict):
            raise self.error(BAD_RESPONSE, "answered without a ticker")
        return to_price(self.title, tick.get("close"))

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/v1/common/symbols"), {}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        rows = self._answer(status_code, body, None).get("data")
        if not isinstance(rows, list):
            raise self.error(BAD_RESPONSE, "answered a market list in an unexpected shape")
        return open_markets(
            rows,
            "base-currency",
            "quote-currency",
            "symbol",
            lambda row: row.get("state") == "online",
        )

    def _answer(self, status_code: int, body: bytes, asked: str | None) -> dict[str, object]:
        """The decoded answer, once its status is "ok".

        Raises:
            SourceError: the error the err-code or status stands for (``unknown_symbol``
                naming the symbol ``asked``, if any), or ``bad_response`` without a status.
        """
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict) or "status" not in data:
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        if data["status"] != "ok":
            code = str(data.get("err-code"))
            # Not among _ERRORS: the message singles out the symbol.
            if code == "invalid-parameter" and data.get("err-msg") in _UNKNOWN_SYMBOL_MESSAGES:
                shown = safe_code(asked) if asked is not None else "the symbol asked for"
                raise self.error(UNKNOWN_SYMBOL, f"does not list {shown}")
            self.check_code(status_code, code, _ERRORS)
        check_status(self.title, status_code)
        return data
