"""Kraken: ``GET /0/public/Ticker?pair=XBTUSD``.

Answers ``{"error": [], "result": {"XXBTZUSD": {"c": ["30303.20000", "0.00067643"], ...}}}``:
the result is keyed by Kraken's own long pair name, which differs from the one asked for, and
``c[0]`` is the last trade. Errors come as HTTP 200 with strings in ``error``, e.g.
``"EQuery:Unknown asset pair"``, ``"EAPI:Rate limit exceeded"``, ``"EService:Unavailable"``;
strings starting with "W" are warnings. Kraken calls bitcoin XBT and has real USD markets.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    HTTP_ERROR,
    MAINTENANCE,
    RATE_LIMITED,
    UNKNOWN_SYMBOL,
    Source,
    check_status,
    join,
    load_json,
    safe_code,
    to_price,
)

_ASSETS: Mapping[str, str] = {"BTC": "XBT"}
_RATE_LIMITS = frozenset({"EAPI:Rate limit exceeded", "EGeneral:Too many requests"})


class Kraken(Source):
    name: ClassVar[str] = "kraken"
    title: ClassVar[str] = "Kraken"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return _ASSETS.get(base, base) + _ASSETS.get(quote, quote)

    def request(self, pair: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/0/public/Ticker"), {"pair": self.symbol(pair)}

    def parse(self, pair: str, status_code: int, body: bytes) -> Decimal:
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict):
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        listed = data.get("error")
        # Strings starting with "W" are warnings that come with a valid result.
        errors = (
            [str(e) for e in listed if str(e).startswith("E")] if isinstance(listed, list) else []
        )
        for error in errors:
            if error == "EQuery:Unknown asset pair":
                raise self.error(UNKNOWN_SYMBOL, f"does not list {self.symbol(pair)}")
            if error in _RATE_LIMITS:
                raise self.error(RATE_LIMITED, f"is rate limiting us ({error})")
            if error.startswith("EService:"):
                raise self.error(MAINTENANCE, f"is unavailable ({safe_code(error)})")
        check_status(self.title, status_code)
        if errors:
            raise self.error(HTTP_ERROR, f"answered error {safe_code(errors[0])}")
        result = data.get("result")
        # One pair asked, one entry back, under a name we cannot derive without asking
        # Kraken's asset list first.
        if not isinstance(result, dict) or len(result) != 1:
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        (ticker,) = result.values()
        last = ticker.get("c") if isinstance(ticker, dict) else None
        if not isinstance(last, list) or not last:
            raise self.error(BAD_RESPONSE, "answered without a last trade")
        return to_price(self.title, last[0])
