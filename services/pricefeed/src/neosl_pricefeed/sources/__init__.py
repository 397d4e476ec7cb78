"""Market-data sources: one adapter per public price API, all behind one small interface.

A feed round asks every source that serves its pair (``Source.serves``) with ``fetch``, drops
the ones that raise ``SourceError`` and hands the rest to ``neosl_pricefeed.aggregate``.
Sources are looked up by name in ``REGISTRY``; their base URLs come from
``Settings.price_source_url(name)`` (``NSL_PRICE_SOURCE_<NAME>_URL``), so tests and
operators can point any of them elsewhere.

Pairs are written ``BASE/QUOTE`` in upper case: ``NEO/USD``, ``GAS/USD``, ``BTC/USD``,
``ETH/USD``, ``NEO/BTC``. Each adapter turns a pair into its API's symbol:

==========  ================  ==================  ==============================
source      NEO/USD asks for  bases               quotes (-> market asked for)
==========  ================  ==================  ==============================
binance     NEOUSDT           NEO GAS BTC ETH     USD (-> USDT), USDT, BTC
coinbase    (not served)      BTC ETH             USD, BTC
kraken      (not served)      BTC (as XBT), ETH   USD, EUR, BTC (as XBT)
okx         NEO-USDT          NEO BTC ETH         USD (-> USDT), USDT, BTC
bybit       (not served)      BTC ETH             USD (-> USDT), USDT, BTC
kucoin      NEO-USDT          NEO GAS BTC ETH     USD (-> USDT), USDT, BTC
gate        NEO_USDT          NEO GAS BTC ETH     USD (-> USDT), USDT, BTC
bitfinex    tNEOUSD           NEO BTC ETH         USD, BTC
htx         neousdt           NEO GAS BTC ETH     USD (-> USDT), USDT, BTC
coingecko   neo/usd           NEO GAS BTC ETH     USD, EUR, BTC, ETH
==========  ================  ==================  ==============================

**USD on exchanges without USD markets.** Binance, OKX, Bybit, KuCoin, Gate and HTX list no
(or only thin) USD books, so a USD pair is priced in USDT there: ``NEO/USD`` asks Binance for
``NEOUSDT``. That treats one USDT as one USD. Tether trades within a fraction of a percent of
a dollar in normal markets, below the 1 % the outlier rule tolerates; if it ever departs
further, the USDT quotes move together against the real-USD sources (Coinbase, Kraken,
Bitfinex, CoinGecko) and a feed that needs the distinction should ask for ``.../USDT``
explicitly, which those exchanges also serve. USDC is not used: where it is listed at all, its
books are usually the thinner ones. The mapping is each adapter's ``quote_aliases``, listed by
``describe()``.

**Which pairs an adapter serves.** Each adapter states a set of base assets and a set of quote
assets (class attributes ``bases`` and ``quotes``); it serves every pair of two different
assets from them. That is a routing rule, not a promise that the market exists: exchanges
list and delist, and a pair they do not list comes back as ``SourceError(kind=
"unknown_symbol")``, which a feed round treats like any other failed source.

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
    Quote,
    Source,
    SourceError,
    fetch,
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
    "Quote",
    "Source",
    "SourceError",
    "describe",
    "fetch",
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
    """Every source, what it serves and how it maps quotes, sorted by name."""
    return [REGISTRY[name].describe() for name in sorted(REGISTRY)]
