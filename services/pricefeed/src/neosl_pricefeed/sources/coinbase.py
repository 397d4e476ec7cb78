"""Coinbase Exchange: ``GET /products/BTC-USD/ticker``; markets from ``GET /products``.

Answers ``{"ask": "...", "bid": "...", "volume": "...", "trade_id": 1, "price": "...",
"size": "...", "time": "..."}``; ``price`` is the last trade. The market list is a bare array,
``[{"id": "BTC-USD", "base_currency": "BTC", "quote_currency": "USD", "status": "online",
"trading_disabled": false, ...}]``; a product with another status ("delisted", "offline") or
with trading disabled is closed. An unknown product is HTTP 404 ``{"message": "NotFound"}``, a
delisted one HTTP 400 ``{"message": "Not allowed for delisted products"}``, the public rate
limit HTTP 429. Coinbase has real USD markets, and lists neither NEO nor GAS.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
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


class Coinbase(Source):
    name: ClassVar[str] = "coinbase"
    title: ClassVar[str] = "Coinbase"
    bases: ClassVar[frozenset[str]] = frozenset({"BTC", "ETH"})
    quotes: ClassVar[frozenset[str]] = frozenset({"USD", "BTC"})

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return f"{base}-{quote}"

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, f"/products/{symbol}/ticker"), {}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        message = data.get("message") if isinstance(data, dict) else None
        if status_code == 404 or (
            status_code == 400 and isinstance(message, str) and "delisted" in message.lower()
        ):
            raise self.error(UNKNOWN_SYMBOL, f"does not list {safe_code(symbol)}")
        check_status(self.title, status_code)
        if not isinstance(data, dict) or "price" not in data:
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return to_price(self.title, data["price"])

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/products"), {}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        data = load_json(self.title, status_code, body)
        check_status(self.title, status_code)
        if not isinstance(data, list):
            raise self.error(BAD_RESPONSE, "answered a market list in an unexpected shape")
        return open_markets(
            data,
            "base_currency",
            "quote_currency",
            "id",
            lambda row: row.get("status") == "online" and row.get("trading_disabled") is not True,
        )
