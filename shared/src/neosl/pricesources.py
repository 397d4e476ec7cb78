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


_NEO = frozenset({"NEO", "GAS", "BTC", "ETH"})
_USDT = {"USD": "USDT", "USDT": "USDT", "BTC": "BTC"}

CATALOG: dict[str, SourceInfo] = {
    s.name: s
    for s in (
        SourceInfo("binance", "Binance", _NEO, _USDT),
        SourceInfo(
            "coinbase",
            "Coinbase Exchange",
            frozenset({"BTC", "ETH"}),
            {"USD": "USD", "EUR": "EUR", "USDT": "USDT"},
        ),
        SourceInfo("kraken", "Kraken", frozenset({"BTC", "ETH"}), {"USD": "USD", "EUR": "EUR"}),
        SourceInfo("okx", "OKX", _NEO, _USDT),
        SourceInfo("bybit", "Bybit", frozenset({"BTC", "ETH"}), {"USD": "USDT", "USDT": "USDT"}),
        SourceInfo("kucoin", "KuCoin", _NEO, _USDT),
        SourceInfo("gate", "Gate", _NEO, _USDT),
        SourceInfo("bitfinex", "Bitfinex", frozenset({"NEO", "BTC", "ETH"}), {"USD": "USD"}),
        SourceInfo("htx", "HTX", _NEO, _USDT),
        SourceInfo("coingecko", "CoinGecko", _NEO, {"USD": "USD", "EUR": "EUR", "BTC": "BTC"}),
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
