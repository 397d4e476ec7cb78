"""Coinbase Exchange: ``GET /products/BTC-USD/ticker``.

Answers ``{"ask": "...", "bid": "...", "volume": "...", "trade_id": 1, "price": "...",
"size": "...", "time": "..."}``; ``price`` is the last trade. An unknown product is HTTP 404
``{"message": "NotFound"}``, a delisted one HTTP 400 ``{"message": "Not allowed for delisted
products"}``, the public rate limit HTTP 429. Coinbase has real USD markets, and lists neither
NEO nor GAS.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    UNKNOWN_SYMBOL,
    Source,
    check_status,
    join,
    load_json,
    to_price,
)


class Coinbase(Source):
    name: ClassVar[str] = "coinbase"
    title: ClassVar[str] = "Coinbase"
    bases: ClassVar[frozenset[str]] = frozenset({"BTC", "ETH"})
    quotes: ClassVar[frozenset[str]] = frozenset({"USD", "BTC"})

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return f"{base}-{quote}"

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, f"/products/{self.symbol(pair)}/ticker"), {}

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        message = data.get("message") if isinstance(data, dict) else None
        if status_code == 404 or (
            status_code == 400 and isinstance(message, str) and "delisted" in message.lower()
        ):
            raise self.error(UNKNOWN_SYMBOL, f"does not list {self.symbol(pair)}")
        check_status(self.title, status_code)
        if not isinstance(data, dict) or "price" not in data:
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, data["price"])
