"""Bitfinex: ``GET /v2/ticker/tNEOUSD``; markets from ``GET /v2/conf/pub:list:pair:exchange``.

Answers a bare array of JSON numbers, ``[BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE,
DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW]``. The market list is an array holding
the array of the pairs open for exchange trading, ``[["BTCUSD", "ETHUSD", "DOGE:USD", ...]]``:
names of six letters are two three-letter codes, longer ones have a colon between the codes,
and test markets ("TESTBTC:TESTUSD") sit among them. Errors are arrays too, ``["error",
CODE, "message"]``: 10020 for a symbol it does not list (HTTP 500), 11010 for its rate limit
(HTTP 429), 11000 and 20060 while the platform is not ready or in maintenance. Trading pair
symbols are "t" + the pair's name. Bitfinex calls Tether (USDT) "UST", and has real USD
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
    listed,
    load_json,
    safe_code,
    to_price,
)

_LAST_PRICE = 6
_ERRORS: Mapping[int, tuple[str, str]] = {
    10020: (UNKNOWN_SYMBOL, "does not list this symbol (error 10020)"),
    11010: (RATE_LIMITED, "is rate limiting us (error 11010)"),
    11000: (MAINTENANCE, "is not ready (error 11000)"),
    20060: (MAINTENANCE, "is in maintenance (error 20060)"),
}
# Our asset code -> Bitfinex's, where they differ.
_ASSETS: Mapping[str, str] = {"USDT": "UST"}
_OURS: Mapping[str, str] = {theirs: ours for ours, theirs in _ASSETS.items()}


class Bitfinex(Source):
    name: ClassVar[str] = "bitfinex"
    title: ClassVar[str] = "Bitfinex"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        base, quote = _ASSETS.get(base, base), _ASSETS.get(quote, quote)
        if len(base) > 3 or len(quote) > 3:
            return f"t{base}:{quote}"
        return f"t{base}{quote}"

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, f"/v2/ticker/{symbol}"), {}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        data = self._answer(status_code, body)
        if data == []:
            raise self.error(UNKNOWN_SYMBOL, f"has no ticker for {safe_code(symbol)}")
        if not isinstance(data, list) or len(data) <= _LAST_PRICE:
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, data[_LAST_PRICE])

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/v2/conf/pub:list:pair:exchange"), {}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        data = self._answer(status_code, body)
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], list):
            raise self.error(BAD_RESPONSE, "answered a market list in an unexpected shape")
        markets: list[Market] = []
        for name in data[0]:
            if not isinstance(name, str) or "TEST" in name:
                continue
            if ":" in name:
                base, _, quote = name.partition(":")
            elif len(name) == 6:
                base, quote = name[:3], name[3:]
            else:
                continue
            market = listed(_OURS.get(base, base), _OURS.get(quote, quote), f"t{name}")
            if market is not None:
                markets.append(market)
        return list(dict.fromkeys(markets))

    def _answer(self, status_code: int, body: bytes) -> object:
        """The decoded answer, once it is not an error.

        Raises:
            SourceError: the error the code or status stands for.
        """
        data = load_json(self.title, status_code, body)
        if isinstance(data, list) and data[:1] == ["error"]:
            self.check_code(status_code, data[1] if len(data) > 1 else None, _ERRORS)
        check_status(self.title, status_code)
        return data
