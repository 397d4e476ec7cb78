"""Kraken: ``GET /0/public/Ticker?pair=XBTUSD``; markets from ``GET /0/public/AssetPairs``.

Answers ``{"error": [], "result": {"XXBTZUSD": {"c": ["30303.20000", "0.00067643"], ...}}}``:
the result is keyed by Kraken's own long pair name, which differs from the one asked for, and
``c[0]`` is the last trade. The market list has the same envelope, ``{"error": [], "result":
{"XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD",
"status": "online", ...}}}``: the ticker takes the ``altname``, and ``wsname`` names both
assets in the short codes. Errors come as HTTP 200 with strings in ``error``, e.g.
``"EQuery:Unknown asset pair"``, ``"EAPI:Rate limit exceeded"``, ``"EService:Unavailable"``;
strings starting with "W" are warnings. Kraken calls bitcoin XBT and dogecoin XDG, and has
real USD markets.
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
    Market,
    Source,
    check_status,
    join,
    listed,
    load_json,
    safe_code,
    to_price,
)

# Our asset code -> Kraken's, where they differ.
_ASSETS: Mapping[str, str] = {"BTC": "XBT", "DOGE": "XDG"}
_OURS: Mapping[str, str] = {theirs: ours for ours, theirs in _ASSETS.items()}
_RATE_LIMITS = frozenset({"EAPI:Rate limit exceeded", "EGeneral:Too many requests"})
# "limit_only" markets still trade; "cancel_only", "post_only" and "reduce_only" ones match no
# new orders (for spot), so their last price goes stale.
_OPEN = frozenset({"online", "limit_only"})


class Kraken(Source):
    name: ClassVar[str] = "kraken"
    title: ClassVar[str] = "Kraken"

    def symbol(self, pair: str) -> str:
        base, quote = self.market(pair)
        return _ASSETS.get(base, base) + _ASSETS.get(quote, quote)

    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/0/public/Ticker"), {"pair": symbol}

    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        result = self._result(status_code, body, symbol)
        # One pair asked, one entry back, under a name that differs from the one asked for.
        if len(result) != 1:
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        (ticker,) = result.values()
        last = ticker.get("c") if isinstance(ticker, dict) else None
        if not isinstance(last, list) or not last:
            raise self.error(BAD_RESPONSE, "answered without a last trade")
        return to_price(self.title, last[0])

    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        return join(base_url, "/0/public/AssetPairs"), {}

    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        result = self._result(status_code, body, None)
        markets: list[Market] = []
        for row in result.values():
            if not isinstance(row, dict) or row.get("status") not in _OPEN:
                continue
            wsname = row.get("wsname")
            if not isinstance(wsname, str) or wsname.count("/") != 1:
                continue
            base, quote = wsname.split("/")
            market = listed(_OURS.get(base, base), _OURS.get(quote, quote), row.get("altname"))
            if market is not None:
                markets.append(market)
        return list(dict.fromkeys(markets))

    def _result(self, status_code: int, body: bytes, asked: str | None) -> dict[object, object]:
        """The ``result`` of an answer, once it carries no error.

        Raises:
            SourceError: the error the answer carries (``unknown_symbol`` naming the pair
                ``asked``, if any), or ``bad_response`` without a result object.
        """
        data = load_json(self.title, status_code, body)
        if not isinstance(data, dict):
            check_status(self.title, status_code)
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        listed_errors = data.get("error")
        # Strings starting with "W" are warnings that come with a valid result.
        errors = (
            [str(e) for e in listed_errors if str(e).startswith("E")]
            if isinstance(listed_errors, list)
            else []
        )
        for error in errors:
            if error == "EQuery:Unknown asset pair":
                shown = safe_code(asked) if asked is not None else "the pair asked for"
                raise self.error(UNKNOWN_SYMBOL, f"does not list {shown}")
            if error in _RATE_LIMITS:
                raise self.error(RATE_LIMITED, f"is rate limiting us ({error})")
            if error.startswith("EService:"):
                raise self.error(MAINTENANCE, f"is unavailable ({safe_code(error)})")
        check_status(self.title, status_code)
        if errors:
            raise self.error(HTTP_ERROR, f"answered error {safe_code(errors[0])}")
        result = data.get("result")
        if not isinstance(result, dict):
            raise self.error(BAD_RESPONSE, "answered in an unexpected shape")
        return result
