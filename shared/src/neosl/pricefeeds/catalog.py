"""The market-data sources price feeds can read, and which pairs each one serves.

Shared by the API (which validates a feed's sources and answers ``GET /v1/price-sources``)
and the pricefeed worker (whose adapters, one per source, query them). Where each source
answers is configuration (``NSL_PRICE_SOURCE_<NAME>_URL``).

A pair is ``BASE/QUOTE``. A source serves it when it lists the base asset and the quote:
``quotes`` maps the quote a feed names to the market the source prices it in. Exchanges
without US-dollar markets price ``…/USD`` from their USDT market (a stablecoin's small
deviation from the dollar is part of what aggregation over several sources smooths out);
those with dollar markets use them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceInfo:
    name: str
    title: str
    bases: frozenset[str]
    # The quote a feed names → the quote of the market read.
    quotes: dict[str, str]

    def serves(self, pair: str) -> bool:
        base, _, quote = pair.upper().partition("/")
        return base in self.bases and quote in self.quotes and base != quote

    def market(self, pair: str) -> tuple[str, str]:
        """(base, quote) of the market read for ``pair``.

        Raises:
            KeyError: the source does not serve ``pair``.
        """
        if not self.serves(pair):
            raise KeyError(f"{self.name} does not serve {pair}")
        base, _, quote = pair.upper().partition("/")
        return base, self.quotes[quote]


_ALL = frozenset({"NEO", "GAS", "BTC", "ETH"})
_MAJORS = frozenset({"BTC", "ETH"})
# Exchanges without dollar markets: USD is read from USDT.
_USDT = {"USD": "USDT", "USDT": "USDT", "BTC": "BTC"}

CATALOG: dict[str, SourceInfo] = {
    s.name: s
    for s in (
        SourceInfo("binance", "Binance", _ALL, _USDT),
        SourceInfo(
            "bitfinex", "Bitfinex", frozenset({"NEO", "BTC", "ETH"}), {"USD": "USD", "BTC": "BTC"}
        ),
        SourceInfo("bybit", "Bybit", _MAJORS, _USDT),
        SourceInfo("coinbase", "Coinbase Exchange", _MAJORS, {"USD": "USD", "BTC": "BTC"}),
        SourceInfo(
            "coingecko", "CoinGecko", _ALL, {"USD": "USD", "EUR": "EUR", "BTC": "BTC", "ETH": "ETH"}
        ),
        SourceInfo("gate", "Gate", _ALL, _USDT),
        SourceInfo("htx", "HTX", _ALL, _USDT),
        SourceInfo("kraken", "Kraken", _MAJORS, {"USD": "USD", "EUR": "EUR", "BTC": "BTC"}),
        SourceInfo("kucoin", "KuCoin", _ALL, _USDT),
        SourceInfo("okx", "OKX", frozenset({"NEO", "BTC", "ETH"}), _USDT),
    )
}
NAMES = tuple(CATALOG)


def serves(name: str, pair: str) -> bool:
    info = CATALOG.get(name)
    return info is not None and info.serves(pair)


def describe() -> list[dict[str, object]]:
    """The catalog as ``GET /v1/price-sources`` answers it."""
    return [
        {
            "name": s.name,
            "title": s.title,
            "bases": sorted(s.bases),
            "quotes": dict(sorted(s.quotes.items())),
        }
        for s in CATALOG.values()
    ]
