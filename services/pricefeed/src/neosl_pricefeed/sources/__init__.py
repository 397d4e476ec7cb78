"""Market-data sources: one adapter per public price API, all behind one small interface.

A feed round asks every source that serves its pair (``Source.serves``) with ``fetch``, drops
the ones that raise ``SourceError`` and hands the rest to ``neosl_pricefeed.aggregate``.
Sources are looked up by name in ``REGISTRY``; their base URLs come from
``Settings.price_source_url(name)`` (``NSL_PRICE_SOURCE_<NAME>_URL``), so tests and
operators can point any of them elsewhere.

Pairs are written ``BASE/QUOTE`` in upper case: ``NEO/USD``, ``GAS/USD``, ``FLM/USDT``,
``NEO/BTC``. A source reads a market by its own name for it, the *symbol*. Which markets a
source has comes from its documented market list (``fetch_listing``, one GET answering
``Market(base, quote, symbol)`` for every market open for trading, in our asset codes); a
feed keeps the symbol listed when it was defined and ``fetch`` asks for it. Without one,
``Source.symbol`` derives it from the pair:

==========  ===============================  ================  ==========================
source      market list (GET)                NEO/USD asks for  a listed market
==========  ===============================  ================  ==========================
binance     /api/v3/exchangeInfo             NEOUSDT           NEO/USDT as NEOUSDT
coinbase    /products                        (not served)      BTC/USD as BTC-USD
kraken      /0/public/AssetPairs             (not served)      BTC/USD as XBTUSD
okx         /api/v5/public/instruments       NEO-USDT          NEO/USDT as NEO-USDT
bybit       /v5/market/instruments-info      (not served)      BTC/USDT as BTCUSDT
kucoin      /api/v2/symbols                  NEO-USDT          NEO/USDT as NEO-USDT
gate        /api/v4/spot/currency_pairs      NEO_USDT          NEO/USDT as NEO_USDT
bitfinex    /v2/conf/pub:list:pair:exchange  tNEOUSD           BTC/USDT as tBTCUST
htx         /v1/common/symbols               neousdt           NEO/USDT as neousdt
coingecko   /api/v3/coins/markets            neo/usd           NEO/EUR as neo/eur
==========  ===============================  ================  ==========================

OKX's list is asked with ``instType=SPOT``, Bybit's with ``category=spot``, CoinGecko's as the
the 1,000 largest coins by market capitalisation, in pages of 250.

Listings speak our asset codes where a venue's differ: Kraken's XBT and XDG are BTC and DOGE,
Bitfinex's UST is USDT, HTX's lower-case codes are upper case. CoinGecko is an aggregator, not
an exchange: it lists coins (the largest coin wins a ticker several coins use), each against
USD, EUR, BTC and ETH, under the symbol "<coin id>/<currency>". A list holds only markets open
for trading, each once; entries that are not markets, or whose codes a pair cannot name, are
skipped.

**USD on exchanges without USD markets.** Binance, OKX, Bybit, KuCoin, Gate and HTX list no
(or only thin) USD books. A USD feed reads their USDT market only where its owner accepts
USDT as USD (``usdt_as_usd``; ``neosl.pricefeeds.catalog.routes`` decides each source's
market and the feed keeps it): ``FLM/USD`` then asks Binance for ``FLMUSDT``, and the round
records the market read. Tether trades within a fraction of a percent of a dollar in normal
markets, below the 1 % the outlier rule tolerates; a feed that needs the distinction names
real-USD sources only, or asks for ``.../USDT``. For feeds defined before market lists, the
mapping is each adapter's ``quote_aliases``, listed by ``describe()``.

**Which pairs an adapter derives a symbol for.** ``Source.serves`` follows the shared
catalog's bases and quotes: every pair of two different assets from them. That is a routing
rule, not a promise that the market exists: exchanges list and delist, and a symbol they do
not list (any more) comes back as ``SourceError(kind="unknown_symbol")``, which a feed round
treats like any other failed source.

Every price is read as an exact ``Decimal`` from the JSON text (strings, or numbers decoded
with ``parse_float=Decimal``) and never passes through a float.
"""

from __future__ import annotations

from neosl_pricefeed.sources.base import (
    BAD_RESPONSE,
    HTTP_ERROR,
    KINDS,
    MAINTENANCE,
    RATE_LIMITED,
    TIMEOUT,
    UNKNOWN_SYMBOL,
    UNREACHABLE,
    Market,
    Quote,
    Source,
    SourceError,
    fetch,
    fetch_listing,
    new_client,
)
from neosl_pricefeed.sources.binance import Binance
from neosl_pricefeed.sources.bitfinex import Bitfinex
from neosl_pricefeed.sources.bybit import Bybit
from neosl_pricefeed.sources.coinbase import Coinbase
from neosl_pricefeed.sources.coingecko import Coingecko
from neosl_pricefeed.sources.gate import Gate
from neosl_pricefeed.sources.htx import Htx
from neosl_pricefeed.sources.kraken import Kraken
from neosl_pricefeed.sources.kucoin import Kucoin
from neosl_pricefeed.sources.okx import Okx

__all__ = [
    "BAD_RESPONSE",
    "HTTP_ERROR",
    "KINDS",
    "MAINTENANCE",
    "RATE_LIMITED",
    "REGISTRY",
    "TIMEOUT",
    "UNKNOWN_SYMBOL",
    "UNREACHABLE",
    "Market",
    "Quote",
    "Source",
    "SourceError",
    "describe",
    "fetch",
    "fetch_listing",
    "new_client",
    "serving",
]

# The adapters hold no state, so one instance of each serves every round.
REGISTRY: dict[str, Source] = {
    source.name: source
    for source in (
        Binance(),
        Coinbase(),
        Kraken(),
        Okx(),
        Bybit(),
        Kucoin(),
        Gate(),
        Bitfinex(),
        Htx(),
        Coingecko(),
    )
}


def serving(pair: str) -> list[Source]:
    """The sources that serve ``pair``, in registry order (none for a malformed pair)."""
    return [source for source in REGISTRY.values() if source.serves(pair)]


def describe() -> list[dict[str, object]]:
    """Every source, what its catalog serves and how it maps quotes, sorted by name."""
    return [REGISTRY[name].describe() for name in sorted(REGISTRY)]
