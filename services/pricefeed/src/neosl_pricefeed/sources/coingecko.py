"""CoinGecko: ``GET /api/v3/simple/price?ids=neo&vs_currencies=usd&precision=full``.

An aggregator rather than an exchange: its price is already a volume-weighted average over
many markets, in real USD. Answers ``{"neo": {"usd": 12.34}}`` with JSON numbers; a coin id
or currency it does not know is simply missing (``{}``), not an error. Errors are HTTP
statuses: 429 for the rate limit (body ``{"status": {"error_code": 429, "error_message":
"..."}}``), 503 while unavailable. Coins are named by CoinGecko id, not ticker.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    HTTP_ERROR,
    UNKNOWN_SYMBOL,
    Source,
    check_status,
    join,
    load_json,
    safe_code,
    to_price,
)

_COIN_IDS: Mapping[str, str] = {"NEO": "neo", "GAS": "gas", "BTC": "bitcoin", "ETH": "ethereum"}


class Coingecko(Source):
    name: ClassVar[str] = "coingecko"
    title: ClassVar[str] = "CoinGecko"

    def _ids(self, pair: str) -> tuple[str, str]:
        base, quote = self.market(pair)
        return _COIN_IDS[base], quote.lower()

    def symbol(self, pair: str) -> str:
        coin, currency = self._ids(pair)
        return f"{coin}/{currency}"

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        coin, currency = self._ids(pair)
        # Without precision=full small prices come rounded to a few significant digits.
        params = {"ids": coin, "vs_currencies": currency, "precision": "full"}
        return join(base_url, "/api/v3/simple/price"), params

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        check_status(self.title, status_code)
        if not isinstance(data, dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        status = data.get("status")
        if isinstance(status, dict) and "error_code" in status:
            raise self.error(HTTP_ERROR, f"answered error {safe_code(status['error_code'])}")
        coin, currency = self._ids(pair)
        prices = data.get(coin)
        if prices is None or (isinstance(prices, dict) and currency not in prices):
            raise self.error(UNKNOWN_SYMBOL, f"has no {currency} price for {coin}")
        if not isinstance(prices, dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, prices[currency])
