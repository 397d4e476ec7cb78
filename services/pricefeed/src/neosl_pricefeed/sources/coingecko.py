"""CoinGecko: ``GET /api/v3/simple/price?ids=neo&vs_currencies=usd&precision=full``; coins
from ``GET /api/v3/coins/markets?vs_currency=usd&order=market_cap_desc&per_page=250&page=N``.

An aggregator rather than an exchange: its price is already a volume-weighted average over
many markets, in real USD. Answers ``{"neo": {"usd": 12.34}}`` with JSON numbers; a coin id
or currency it does not know is simply missing (``{}``), not an error. Errors are HTTP
statuses: 429 for the rate limit (body ``{"status": {"error_code": 429, "error_message":
"..."}}``), 503 while unavailable.

Coins are named by CoinGecko id, not ticker, so a market's symbol is "<coin id>/<currency>",
e.g. "neo/usd". The coin list is ``[{"id": "bitcoin", "symbol": "btc", "name": "Bitcoin",
...}]``, largest market capitalisation first, 250 a page: up to four pages (the 1,000
largest coins) are read, fewer when a page comes back short; each coin is listed against USD,
EUR, BTC and ETH. Tickers are not unique (many small coins call themselves "neo"): the
largest coin with a ticker is the one listed under it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    HTTP_ERROR,
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

_COIN_IDS: Mapping[str, str] = {"NEO": "neo", "GAS": "gas", "BTC": "bitcoin", "ETH": "ethereum"}
# The currencies each listed coin is offered in.
_QUOTES = ("USD", "EUR", "BTC", "ETH")
_PER_PAGE = 250


class Coingecko(Source):
    name: ClassVar[str] = "coingecko"
    title: ClassVar[str] = "CoinGecko"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        coin = _COIN_IDS.get(base)
        if coin is None:
            raise self.error(UNKNOWN_SYMBOL, f"has no coin id known for {base}")
        return f"{coin}/{quote.lower()}"

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        coin, _, currency = symbol.partition("/")
        # Without precision=full small prices come rounded to a few significant digits.
        params = {"ids": coin, "vs_currencies": currency, "precision": "full"}
        return join(base_url, "/api/v3/simple/price"), params

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        data = self._answer(status_code, body)
        if not isinstance(data, dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        coin, _, currency = symbol.partition("/")
        prices = data.get(coin)
        if prices is None or (isinstance(prices, dict) and currency not in prices):
            shown = f"{safe_code(currency)} price for {safe_code(coin)}"
            raise self.error(UNKNOWN_SYMBOL, f"has no {shown}")
        if not isinstance(prices, dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, prices[currency])

    # Its coins by market cap, 250 a page: the 1,000 largest.
    listing_pages: ClassVar[int] = 4

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return self.listing_page(base_url, 1)

    def listing_page(self, base_url: str, page: int) -> tuple[str, dict[str, str]]:
        params = {
            "vs_currency": "usd",
            "order": "market_cap_desc",
            "per_page": str(_PER_PAGE),
            "page": str(page),
        }
        return join(base_url, "/api/v3/coins/markets"), params

    def listing_complete(self, body: bytes) -> bool:
        # A page shorter than a full one is the last.
        try:
            rows = json.loads(body)
        except ValueError:
            return True
        return not isinstance(rows, list) or len(rows) < _PER_PAGE

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        data = self._answer(status_code, body)
        if not isinstance(data, list):
            raise self.error(BAD_RESPONSE, "answered a coin list in an unexpected shape")
        coins: dict[str, str] = {}  # ticker -> id, largest coin first
        for row in data:
            if not isinstance(row, dict):
                continue
            coin, ticker = row.get("id"), row.get("symbol")
            if not (isinstance(coin, str) and coin and "/" not in coin):
                continue
            if isinstance(ticker, str):
                coins.setdefault(ticker.upper(), coin)
        return [
            market
            for ticker, coin in coins.items()
            for quote in _QUOTES
            if (market := listed(ticker, quote, f"{coin}/{quote.lower()}"))
        ]

    def _answer(self, status_code: int, body: bytes) -> object:
        """The decoded answer, once it is not an error.

        Raises:
            SourceError: the error the status stands for, or ``http_error`` for an error
                object in a good status.
        """
        data = load_json(self.title, status_code, body)
        check_status(self.title, status_code)
        status = data.get("status") if isinstance(data, dict) else None
        if isinstance(status, dict) and "error_code" in status:
            raise self.error(HTTP_ERROR, f"answered error {safe_code(status['error_code'])}")
        return data
