"""The market-data sources price feeds can read, and which pairs each one serves.

Shared by the API (which validates a feed's sources and answers ``GET /v1/price-sources``)
and the pricefeed worker (whose adapters, one per source, query them). Where each source
answers is configuration (``NSL_PRICE_SOURCE_<NAME>_URL``).

A pair is ``BASE/QUOTE``. What a source serves is what its market list says: the pricefeed
worker fetches each source's documented list every ``NSL_PRICE_LISTING_REFRESH_SECONDS``
and stores it (``source_markets``), so any pair an exchange lists can be fed, and the API
checks a feed against the stored lists without asking any exchange. ``routes`` decides, for
each named source, which market it reads and under which symbol; the feed keeps both.

A source whose list has never been stored (the worker has not run yet, or the exchange was
unreachable since) serves what the built-in ``CATALOG`` says: the base assets NEO, GAS,
BTC and ETH, ``quotes`` mapping the quote a feed names to the market read.

**USD from USDT.** Many exchanges have no US-dollar markets. A ``…/USD`` feed reads such an
exchange's ``…/USDT`` market only when the feed's owner accepts USDT as USD
(``usdt_as_usd``); otherwise that source is refused, with a message saying so. Each round
records the market every source read, so the substitution shows where it happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from neosl.models import SourceListing, SourceMarket


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


def describe(
    status: dict[str, SourceListing], served: dict[str, Route] | None = None
) -> list[dict[str, object]]:
    """The catalog as ``GET /v1/price-sources`` answers it: each source with its stored
    market list's status (``status``: ``listings``) and the built-in bases and quotes that
    apply while it has none; given ``served`` (a pair's routes), only those sources, each
    with the market it reads and its symbol."""
    out: list[dict[str, object]] = []
    for s in CATALOG.values():
        if served is not None and s.name not in served:
            continue
        row = status.get(s.name)
        route = served.get(s.name) if served is not None else None
        out.append(
            {
                "name": s.name,
                "title": s.title,
                "markets": row.markets if row is not None and row.listed_at else None,
                "listed_at": row.listed_at if row is not None else None,
                "listing_error": row.error if row is not None else None,
                "market": route.market if route is not None else None,
                "symbol": route.symbol if route is not None else None,
                "bases": sorted(s.bases),
                "quotes": dict(sorted(s.quotes.items())),
            }
        )
    return out


USD, USDT = "USD", "USDT"


@dataclass(frozen=True)
class Route:
    """How a source prices a pair: the market it reads (``BASE/QUOTE`` in our codes; the
    pair itself, or ``BASE/USDT`` for a USD pair whose owner accepts USDT) and the source's
    symbol of it (None where the built-in catalog applies: the adapter names it)."""

    source: str
    market: str
    symbol: str | None

    def as_source(self) -> dict[str, str]:
        """What a feed keeps of it, next to the source's name."""
        kept = {"name": self.source, "market": self.market}
        if self.symbol is not None:
            kept["symbol"] = self.symbol
        return kept


def routes(
    session: Session, pair: str, names: Iterable[str], usdt_as_usd: bool
) -> dict[str, Route | str]:
    """For each known source among ``names``: how it prices ``pair``, or why it cannot (a
    message naming the source and the pair). Two statements, whatever the number of names.
    """
    names = [n for n in dict.fromkeys(names) if n in CATALOG]
    base, _, quote = pair.upper().partition("/")
    listed = set(
        session.scalars(
            select(SourceListing.source).where(
                SourceListing.source.in_(names), SourceListing.listed_at.is_not(None)
            )
        )
    )
    symbols: dict[tuple[str, str], str] = {}
    if listed:
        rows = session.execute(
            select(SourceMarket.source, SourceMarket.quote, SourceMarket.symbol).where(
                SourceMarket.source.in_(listed),
                SourceMarket.base == base,
                SourceMarket.quote.in_({quote, USDT}),
            )
        )
        symbols = {(r.source, r.quote): r.symbol for r in rows}
    out: dict[str, Route | str] = {}
    for name in names:
        if name in listed:
            out[name] = _listed_route(name, base, quote, symbols, usdt_as_usd)
        else:
            out[name] = _catalog_route(name, base, quote, usdt_as_usd)
    return out


def _listed_route(
    name: str, base: str, quote: str, symbols: dict[tuple[str, str], str], usdt_as_usd: bool
) -> Route | str:
    pair = f"{base}/{quote}"
    if base != quote and (name, quote) in symbols:
        return Route(name, pair, symbols[name, quote])
    if quote == USD and base != USDT and (name, USDT) in symbols:
        if usdt_as_usd:
            return Route(name, f"{base}/{USDT}", symbols[name, USDT])
        return _usdt_refused(name, base)
    return f"{name} does not list {pair} (GET /v1/price-sources?pair={pair})"


def _catalog_route(name: str, base: str, quote: str, usdt_as_usd: bool) -> Route | str:
    info = CATALOG[name]
    pair = f"{base}/{quote}"
    if not info.serves(pair):
        return (
            f"{name} does not serve {pair} (its market list is not fetched yet; until it is, "
            f"it serves {', '.join(sorted(info.bases))} against {', '.join(sorted(info.quotes))})"
        )
    theirs = info.quotes[quote]
    if theirs == quote:
        return Route(name, pair, None)
    if not usdt_as_usd:
        return _usdt_refused(name, base)
    return Route(name, f"{base}/{theirs}", None)


def _usdt_refused(name: str, base: str) -> str:
    return (
        f"{name} lists {base}/USDT, not {base}/USD: set usdt_as_usd to accept USDT as USD "
        "for this feed"
    )


def serving(session: Session, pair: str, usdt_as_usd: bool) -> list[Route]:
    """The sources that price ``pair``, in catalog order."""
    return [r for r in routes(session, pair, NAMES, usdt_as_usd).values() if isinstance(r, Route)]


def listings(session: Session) -> dict[str, SourceListing]:
    """Each source's stored listing status, by name (absent: never asked)."""
    return {row.source: row for row in session.scalars(select(SourceListing))}
