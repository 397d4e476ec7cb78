from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import pytest

from neosl.config import PRICE_SOURCE_URLS
from neosl_devstack import markets as fakes
from neosl_devstack.markets import Asked, FakeMarkets, venue_symbol
from neosl_pricefeed.sources import (
    BAD_RESPONSE,
    HTTP_ERROR,
    KINDS,
    MAINTENANCE,
    RATE_LIMITED,
    REGISTRY,
    TIMEOUT,
    UNKNOWN_SYMBOL,
    UNREACHABLE,
    Market,
    SourceError,
    describe,
    fetch,
    fetch_listing,
    serving,
)
from neosl_pricefeed.sources import base as sources_base
from neosl_pricefeed.sources.bitfinex import Bitfinex
from neosl_pricefeed.sources.kraken import Kraken


@dataclass(frozen=True)
class Case:
    name: str
    pair: str
    symbol: str  # what the source calls the pair
    path: str  # where the request goes, under the base URL
    query: dict[str, str]
    unsupported: tuple[str, ...]
    listed_as: tuple[str, str]  # the market the symbol is in the source's list, our codes
    listing_path: str  # where the market list is asked for, under the base URL
    listing_query: dict[str, str]
    quote: str  # what the source prices FLM in: USDT on exchanges without dollar markets
    flm: str  # the source's name for FLM in that quote
    errors: tuple[tuple[str, str], ...] = ()  # the source's own failure modes and their kind

    def __str__(self) -> str:
        return self.name


COINGECKO_PAGE = {
    "vs_currency": "usd",
    "order": "market_cap_desc",
    "per_page": "250",
    "page": "1",
}
CASES = [
    Case(
        "binance",
        "NEO/USD",
        "NEOUSDT",
        "/api/v3/ticker/price",
        {"symbol": "NEOUSDT"},
        ("XRP/USD", "NEO/EUR"),
        ("NEO", "USDT"),
        "/api/v3/exchangeInfo",
        {},
        "USDT",
        "FLMUSDT",
        ((fakes.BINANCE_IP_BANNED, RATE_LIMITED),),
    ),
    Case(
        "coinbase",
        "BTC/USD",
        "BTC-USD",
        "/products/BTC-USD/ticker",
        {},
        ("NEO/USD", "GAS/USD", "BTC/USDT"),
        ("BTC", "USD"),
        "/products",
        {},
        "USD",
        "FLM-USD",
        ((fakes.COINBASE_DELISTED, UNKNOWN_SYMBOL),),
    ),
    Case(
        "kraken",
        "BTC/USD",
        "XBTUSD",
        "/0/public/Ticker",
        {"pair": "XBTUSD"},
        ("NEO/USD", "BTC/USDT"),
        ("BTC", "USD"),
        "/0/public/AssetPairs",
        {},
        "USD",
        "FLMUSD",
        ((fakes.KRAKEN_TOO_MANY_REQUESTS, RATE_LIMITED),),
    ),
    Case(
        "okx",
        "NEO/USD",
        "NEO-USDT",
        "/api/v5/market/ticker",
        {"instId": "NEO-USDT"},
        ("GAS/USD", "NEO/EUR"),
        ("NEO", "USDT"),
        "/api/v5/public/instruments",
        {"instType": "SPOT"},
        "USDT",
        "FLM-USDT",
    ),
    Case(
        "bybit",
        "BTC/USD",
        "BTCUSDT",
        "/v5/market/tickers",
        {"category": "spot", "symbol": "BTCUSDT"},
        ("NEO/USD", "BTC/EUR"),
        ("BTC", "USDT"),
        "/v5/market/instruments-info",
        {"category": "spot"},
        "USDT",
        "FLMUSDT",
        ((fakes.BYBIT_IP_LIMITED, RATE_LIMITED),),
    ),
    Case(
        "kucoin",
        "NEO/USD",
        "NEO-USDT",
        "/api/v1/market/orderbook/level1",
        {"symbol": "NEO-USDT"},
        ("XRP/USD", "NEO/EUR"),
        ("NEO", "USDT"),
        "/api/v2/symbols",
        {},
        "USDT",
        "FLM-USDT",
    ),
    Case(
        "gate",
        "NEO/USD",
        "NEO_USDT",
        "/api/v4/spot/tickers",
        {"currency_pair": "NEO_USDT"},
        ("XRP/USD", "NEO/EUR"),
        ("NEO", "USDT"),
        "/api/v4/spot/currency_pairs",
        {},
        "USDT",
        "FLM_USDT",
    ),
    Case(
        "bitfinex",
        "NEO/USD",
        "tNEOUSD",
        "/v2/ticker/tNEOUSD",
        {},
        ("GAS/USD", "NEO/USDT"),
        ("NEO", "USD"),
        "/v2/conf/pub:list:pair:exchange",
        {},
        "USD",
        "tFLMUSD",
    ),
    Case(
        "htx",
        "NEO/USD",
        "neousdt",
        "/market/detail/merged",
        {"symbol": "neousdt"},
        ("XRP/USD", "NEO/EUR"),
        ("NEO", "USDT"),
        "/v1/common/symbols",
        {},
        "USDT",
        "flmusdt",
        ((fakes.HTX_TRADE_DISABLED, UNKNOWN_SYMBOL),),
    ),
    Case(
        "coingecko",
        "NEO/USD",
        "neo/usd",
        "/api/v3/simple/price",
        {"ids": "neo", "vs_currencies": "usd", "precision": "full"},
        ("XRP/USD", "NEO/USDT"),
        ("NEO", "USD"),
        "/api/v3/coins/markets",
        COINGECKO_PAGE,
        "USD",
        "flamingo-finance/usd",
    ),
]
# Sources whose answers carry prices as JSON numbers rather than strings.
NUMBER_SOURCES = ("bitfinex", "htx", "coingecko")


@pytest.fixture
def fake() -> Iterator[FakeMarkets]:
    with FakeMarkets() as markets:
        yield markets


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # Not the environment's proxy: every request here goes to the local fake.
    with httpx.Client(trust_env=False) as http:
        yield http


def _fetch_error(
    client: httpx.Client, fake: FakeMarkets, case: Case, pair: str | None = None
) -> SourceError:
    with pytest.raises(SourceError) as info:
        fetch(client, REGISTRY[case.name], pair or case.pair, fake.base_url(case.name), 2.0)
    # Tenants see these messages: never our base URL.
    assert "127.0.0.1" not in info.value.message
    return info.value


@pytest.mark.parametrize("case", CASES, ids=str)
def test_request_carries_the_source_symbol(
    fake: FakeMarkets, client: httpx.Client, case: Case
) -> None:
    source = REGISTRY[case.name]
    assert source.symbol(case.pair) == case.symbol
    fake.set_price(case.name, case.symbol, "12.34")

    quote = fetch(client, source, case.pair, fake.base_url(case.name), 2.0)

    assert fake.asked(case.name) == [Asked(case.name, case.path, case.query)]
    assert (quote.source, quote.pair, quote.price) == (case.name, case.pair, Decimal("12.34"))
    assert quote.latency_ms >= 0


@pytest.mark.parametrize(
    ("name", "pair", "symbol"),
    [
        ("binance", "NEO/BTC", "NEOBTC"),
        ("binance", "GAS/USDT", "GASUSDT"),
        ("coinbase", "ETH/BTC", "ETH-BTC"),
        ("kraken", "ETH/BTC", "ETHXBT"),
        ("kraken", "BTC/EUR", "XBTEUR"),
        ("okx", "ETH/BTC", "ETH-BTC"),
        ("bybit", "ETH/USDT", "ETHUSDT"),
        ("kucoin", "GAS/USD", "GAS-USDT"),
        ("gate", "GAS/BTC", "GAS_BTC"),
        ("bitfinex", "NEO/BTC", "tNEOBTC"),
        ("htx", "GAS/USD", "gasusdt"),
        ("coingecko", "BTC/EUR", "bitcoin/eur"),
        ("coingecko", "GAS/BTC", "gas/btc"),
    ],
)
def test_symbol_mapping(name: str, pair: str, symbol: str) -> None:
    assert REGISTRY[name].symbol(pair) == symbol


def test_bitfinex_separates_long_asset_codes_with_a_colon() -> None:
    class WideBitfinex(Bitfinex):
        bases: ClassVar[frozenset[str]] = frozenset({"DOGE", "BTC"})
        quotes: ClassVar[frozenset[str]] = frozenset({"USD", "USDT"})

    assert WideBitfinex().symbol("DOGE/USD") == "tDOGE:USD"
    # Bitfinex calls Tether "UST".
    assert WideBitfinex().symbol("BTC/USDT") == "tBTCUST"
    assert WideBitfinex().symbol("DOGE/USDT") == "tDOGE:UST"


def test_kraken_names_bitcoin_and_dogecoin_its_own_way() -> None:
    class WideKraken(Kraken):
        bases: ClassVar[frozenset[str]] = frozenset({"DOGE"})
        quotes: ClassVar[frozenset[str]] = frozenset({"USD", "BTC"})

    assert WideKraken().symbol("DOGE/USD") == "XDGUSD"
    assert WideKraken().symbol("DOGE/BTC") == "XDGXBT"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_fake_names_markets_as_the_adapters_do(case: Case) -> None:
    assert venue_symbol(case.name, *case.listed_as) == case.symbol


@pytest.mark.parametrize("price", ["0.00001234", "12345.6789", "0.1", "68000"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_price_is_exact(fake: FakeMarkets, client: httpx.Client, case: Case, price: str) -> None:
    fake.set_price(case.name, case.symbol, price)

    quote = fetch(client, REGISTRY[case.name], case.pair, fake.base_url(case.name), 2.0)

    assert quote.price == Decimal(price)
    assert str(quote.price) == price  # digit for digit, as the source wrote it


@pytest.mark.parametrize("name", NUMBER_SOURCES)
def test_json_numbers_with_an_exponent_are_exact(
    fake: FakeMarkets, client: httpx.Client, name: str
) -> None:
    case = next(case for case in CASES if case.name == name)
    fake.set_price(name, case.symbol, "1.234E-5")

    quote = fetch(client, REGISTRY[name], case.pair, fake.base_url(name), 2.0)

    assert quote.price == Decimal("0.00001234")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_symbol_not_listed_is_unknown_symbol(
    fake: FakeMarkets, client: httpx.Client, case: Case
) -> None:
    fake.set_price(case.name, "SOMETHINGELSE", "1")

    error = _fetch_error(client, fake, case)

    assert error.kind == UNKNOWN_SYMBOL
    assert REGISTRY[case.name].title in error.message


def test_coingecko_without_the_currency_is_unknown_symbol(
    fake: FakeMarkets, client: httpx.Client
) -> None:
    coingecko = next(case for case in CASES if case.name == "coingecko")
    fake.set_price("coingecko", "neo/eur", "10.5")  # it knows the coin, not in USD

    assert _fetch_error(client, fake, coingecko).kind == UNKNOWN_SYMBOL


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (fakes.RATE_LIMITED, RATE_LIMITED),
        (fakes.MAINTENANCE, MAINTENANCE),
        (fakes.SERVER_ERROR, HTTP_ERROR),
        (fakes.NOT_JSON, BAD_RESPONSE),
    ],
)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_error_shapes(
    fake: FakeMarkets, client: httpx.Client, case: Case, mode: str, kind: str
) -> None:
    fake.set_price(case.name, case.symbol, "12.34")
    fake.fail(case.name, mode)

    assert _fetch_error(client, fake, case).kind == kind


@pytest.mark.parametrize(
    ("case", "mode", "kind"),
    [(case, mode, kind) for case in CASES for mode, kind in case.errors],
    ids=str,
)
def test_source_specific_error_shapes(
    fake: FakeMarkets, client: httpx.Client, case: Case, mode: str, kind: str
) -> None:
    fake.set_price(case.name, case.symbol, "12.34")
    fake.fail(case.name, mode)

    assert _fetch_error(client, fake, case).kind == kind


def test_error_messages_do_not_repeat_the_source_text(
    fake: FakeMarkets, client: httpx.Client
) -> None:
    binance = next(case for case in CASES if case.name == "binance")
    fake.fail("binance", fakes.RATE_LIMITED)

    error = _fetch_error(client, fake, binance)

    assert error.message == "Binance is rate limiting us (code -1003)"


@pytest.mark.parametrize("price", ["0", "-1.5", "1E+20", "1E-20", "NaN", "Infinity"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_implausible_prices_are_bad_responses(
    fake: FakeMarkets, client: httpx.Client, case: Case, price: str
) -> None:
    fake.set_price(case.name, case.symbol, price)

    assert _fetch_error(client, fake, case).kind == BAD_RESPONSE


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in NUMBER_SOURCES], ids=str)
def test_a_price_that_is_not_a_number_is_a_bad_response(
    fake: FakeMarkets, client: httpx.Client, case: Case
) -> None:
    fake.set_price(case.name, case.symbol, "12,34")

    assert _fetch_error(client, fake, case).kind == BAD_RESPONSE


@pytest.mark.parametrize("case", CASES, ids=str)
def test_slow_answer_is_a_timeout(fake: FakeMarkets, client: httpx.Client, case: Case) -> None:
    fake.set_price(case.name, case.symbol, "12.34")
    fake.delay(case.name, 5.0)
    started = time.monotonic()

    with pytest.raises(SourceError) as info:
        fetch(client, REGISTRY[case.name], case.pair, fake.base_url(case.name), 0.2)

    assert info.value.kind == TIMEOUT
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("case", CASES, ids=str)
def test_closed_port_is_unreachable(client: httpx.Client, case: Case) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.

    with pytest.raises(SourceError) as info:
        fetch(client, REGISTRY[case.name], case.pair, f"http://127.0.0.1:{port}", 2.0)

    assert info.value.kind == UNREACHABLE


def test_an_oversized_answer_is_a_bad_response(fake: FakeMarkets, client: httpx.Client) -> None:
    binance = next(case for case in CASES if case.name == "binance")
    fake.set_price("binance", "NEOUSDT", "1" + "0" * 300_000)

    assert _fetch_error(client, fake, binance).kind == BAD_RESPONSE


@pytest.mark.parametrize("case", CASES, ids=str)
def test_serves(case: Case) -> None:
    source = REGISTRY[case.name]
    assert source.serves(case.pair)
    for pair in case.unsupported:
        assert not source.serves(pair), pair
    for malformed in ("neo/usd", "NEOUSD", "NEO/", "NEO/NEO", "NEO/USD/BTC", ""):
        assert not source.serves(malformed), malformed


@pytest.mark.parametrize("case", CASES, ids=str)
def test_unserved_pair_is_refused_before_asking(client: httpx.Client, case: Case) -> None:
    source = REGISTRY[case.name]
    with pytest.raises(SourceError) as info:
        source.symbol(case.unsupported[0])
    assert info.value.kind == UNKNOWN_SYMBOL

    # Nothing listens there: an attempt would be "unreachable".
    with pytest.raises(SourceError) as info:
        fetch(client, source, case.unsupported[0], "http://127.0.0.1:9", 2.0)
    assert info.value.kind == UNKNOWN_SYMBOL


def test_registry_holds_every_configured_source() -> None:
    assert len(REGISTRY) >= 8
    assert set(REGISTRY) == set(PRICE_SOURCE_URLS)
    assert all(source.name == name for name, source in REGISTRY.items())
    assert {case.name for case in CASES} == set(REGISTRY)


def test_serving_lists_the_sources_for_a_pair() -> None:
    names = {source.name for source in serving("NEO/USD")}

    assert {"binance", "okx", "kucoin", "gate", "bitfinex", "htx", "coingecko"} <= names
    assert "coinbase" not in names
    assert serving("not a pair") == []


def test_describe_lists_what_each_source_serves() -> None:
    described = describe()

    assert [entry["name"] for entry in described] == sorted(REGISTRY)
    binance = next(entry for entry in described if entry["name"] == "binance")
    assert binance["quote_aliases"] == {"USD": "USDT"}
    assert binance["example"] == {"pair": "NEO/USD", "symbol": "NEOUSDT"}
    assert binance["bases"] == ["BTC", "ETH", "GAS", "NEO"]
    kraken = next(entry for entry in described if entry["name"] == "kraken")
    assert kraken["quote_aliases"] == {}
    assert kraken["example"] == {"pair": "BTC/USD", "symbol": "XBTUSD"}


def test_source_error_kinds_are_closed() -> None:
    assert {UNKNOWN_SYMBOL, RATE_LIMITED, MAINTENANCE, BAD_RESPONSE, HTTP_ERROR} <= KINDS
    with pytest.raises(ValueError, match="kind"):
        SourceError("broken", "x")


# Market lists.

EXCHANGES = [case for case in CASES if case.name != "coingecko"]
COINGECKO_QUOTES = ("USD", "EUR", "BTC", "ETH")


def _listing(client: httpx.Client, fake: FakeMarkets, name: str) -> list[Market]:
    return fetch_listing(client, REGISTRY[name], fake.base_url(name), 2.0)


def _listing_error(client: httpx.Client, fake: FakeMarkets, name: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        _listing(client, fake, name)
    assert "127.0.0.1" not in info.value.message
    return info.value


@pytest.mark.parametrize("case", EXCHANGES, ids=str)
def test_listing_holds_the_open_markets(
    fake: FakeMarkets, client: httpx.Client, case: Case
) -> None:
    flm = fake.list_market(case.name, "FLM", case.quote)
    neo_btc = fake.list_market(case.name, "NEO", "BTC")
    fake.list_market(case.name, "ETH", "BTC", trading=False)

    markets = _listing(client, fake, case.name)

    assert fake.asked(case.name) == [Asked(case.name, case.listing_path, case.listing_query)]
    assert flm == case.flm
    assert markets == [Market("FLM", case.quote, flm), Market("NEO", "BTC", neo_btc)]


def test_coingecko_lists_each_coin_in_each_currency(
    fake: FakeMarkets, client: httpx.Client
) -> None:
    case = next(case for case in CASES if case.name == "coingecko")
    fake.list_market("coingecko", "BTC", "USD")
    fake.list_market("coingecko", "FLM", "USD")
    # A smaller coin with the same ticker, listed after (so smaller than) the real one.
    fake.list_market("coingecko", "FLM", "USD", symbol="flamingo-imposter/usd")
    fake.list_market("coingecko", "ETH", "USD", trading=False)

    markets = _listing(client, fake, "coingecko")

    assert fake.asked("coingecko") == [Asked("coingecko", case.listing_path, case.listing_query)]
    assert markets == [
        *(Market("BTC", quote, f"bitcoin/{quote.lower()}") for quote in ("USD", "EUR", "ETH")),
        *(Market("FLM", quote, f"flamingo-finance/{quote.lower()}") for quote in COINGECKO_QUOTES),
    ]


@pytest.mark.parametrize(("coins", "pages"), [(300, 2), (1200, 4), (1000, 4)])
def test_coingecko_listing_reads_its_pages_up_to_the_thousand_largest_coins(
    fake: FakeMarkets, client: httpx.Client, coins: int, pages: int
) -> None:
    for rank in range(coins):
        fake.list_market("coingecko", f"C{rank:04d}", "USD", symbol=f"coin-{rank}/usd")

    markets = _listing(client, fake, "coingecko")

    asked = [int(a.query["page"]) for a in fake.asked("coingecko")]
    assert asked == list(range(1, pages + 1))
    tickers = list(dict.fromkeys(m.base for m in markets))
    # Largest first, none past the thousandth.
    assert tickers == [f"C{rank:04d}" for rank in range(min(coins, 1000))]


def test_kraken_listing_speaks_our_asset_codes(fake: FakeMarkets, client: httpx.Client) -> None:
    fake.list_market("kraken", "BTC", "USD")
    fake.list_market("kraken", "DOGE", "USD")
    fake.list_market("kraken", "ETH", "BTC")

    markets = _listing(client, fake, "kraken")

    assert markets == [
        Market("BTC", "USD", "XBTUSD"),
        Market("DOGE", "USD", "XDGUSD"),
        Market("ETH", "BTC", "ETHXBT"),
    ]


def test_bitfinex_listing_splits_names_and_skips_test_markets(
    fake: FakeMarkets, client: httpx.Client
) -> None:
    fake.list_market("bitfinex", "BTC", "USD")
    fake.list_market("bitfinex", "DOGE", "USD")
    fake.list_market("bitfinex", "BTC", "USDT")
    fake.list_market("bitfinex", "USDT", "USD")
    assert fake.list_market("bitfinex", "TESTBTC", "TESTUSD") == "tTESTBTC:TESTUSD"

    markets = _listing(client, fake, "bitfinex")

    assert markets == [
        Market("BTC", "USD", "tBTCUSD"),
        Market("DOGE", "USD", "tDOGE:USD"),
        Market("BTC", "USDT", "tBTCUST"),
        Market("USDT", "USD", "tUSTUSD"),
    ]


def test_htx_listing_reads_lower_case_codes(fake: FakeMarkets, client: httpx.Client) -> None:
    fake.list_market("htx", "NEO", "USDT")

    assert _listing(client, fake, "htx") == [Market("NEO", "USDT", "neousdt")]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_priced_symbol_is_listed(fake: FakeMarkets, client: httpx.Client, case: Case) -> None:
    fake.set_price(case.name, case.symbol, "12.34")
    fake.set_price(case.name, "SOMETHINGELSE", "1")  # priced, but names no market

    markets = _listing(client, fake, case.name)

    assert Market(*case.listed_as, case.symbol) in markets
    assert {market.base for market in markets} == {case.listed_as[0]}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_listed_symbol_fetches_its_price(
    fake: FakeMarkets, client: httpx.Client, case: Case
) -> None:
    fake.list_market(case.name, "FLM", case.quote, price="0.05")
    source = REGISTRY[case.name]
    (market,) = [m for m in _listing(client, fake, case.name) if m.quote == case.quote]
    pair = f"{market.base}/{market.quote}"

    quote = fetch(client, source, pair, fake.base_url(case.name), 2.0, symbol=market.symbol)

    assert (quote.source, quote.pair, quote.price) == (
        case.name,
        "FLM/" + case.quote,
        Decimal("0.05"),
    )
    url, params = source.request(case.flm, "")
    assert fake.asked(case.name)[-1] == Asked(case.name, url, params)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (fakes.RATE_LIMITED, RATE_LIMITED),
        (fakes.MAINTENANCE, MAINTENANCE),
        (fakes.SERVER_ERROR, HTTP_ERROR),
        (fakes.NOT_JSON, BAD_RESPONSE),
    ],
)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_listing_error_shapes(
    fake: FakeMarkets, client: httpx.Client, case: Case, mode: str, kind: str
) -> None:
    fake.list_market(case.name, "FLM", case.quote)
    fake.fail(case.name, mode)

    assert _listing_error(client, fake, case.name).kind == kind


@pytest.mark.parametrize(
    ("name", "mode", "kind"),
    [
        ("binance", fakes.BINANCE_IP_BANNED, RATE_LIMITED),
        ("kraken", fakes.KRAKEN_TOO_MANY_REQUESTS, RATE_LIMITED),
        ("bybit", fakes.BYBIT_IP_LIMITED, RATE_LIMITED),
    ],
)
def test_source_specific_listing_error_shapes(
    fake: FakeMarkets, client: httpx.Client, name: str, mode: str, kind: str
) -> None:
    fake.fail(name, mode)

    assert _listing_error(client, fake, name).kind == kind


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_listing_in_another_shape_is_a_bad_response(case: Case) -> None:
    with pytest.raises(SourceError) as info:
        REGISTRY[case.name].parse_listing(200, b'{"unexpected": true}')

    assert info.value.kind == BAD_RESPONSE


def test_a_listing_larger_than_a_ticker_is_read(fake: FakeMarkets, client: httpx.Client) -> None:
    for i in range(1000):
        fake.list_market("binance", f"X{i:03d}", "USDT")

    markets = _listing(client, fake, "binance")

    assert len(markets) == 1000
    assert markets[-1] == Market("X999", "USDT", "X999USDT")


def test_an_oversized_listing_is_a_bad_response(
    fake: FakeMarkets, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real bound is 64 MB; the same check at a smaller size keeps the test quick.
    monkeypatch.setattr(sources_base, "MAX_LISTING_BYTES", 50_000)
    for i in range(200):
        fake.list_market("binance", f"X{i:03d}", "USDT")

    error = _listing_error(client, fake, "binance")

    assert error.kind == BAD_RESPONSE
    assert error.message == "Binance sent an answer too large to be a market list"


def test_a_slow_listing_is_a_timeout(fake: FakeMarkets, client: httpx.Client) -> None:
    fake.delay("okx", 5.0)

    with pytest.raises(SourceError) as info:
        fetch_listing(client, REGISTRY["okx"], fake.base_url("okx"), 0.2)

    assert info.value.kind == TIMEOUT


def test_ticker_only_failures_leave_the_listing_alone(
    fake: FakeMarkets, client: httpx.Client
) -> None:
    fake.list_market("htx", "NEO", "USDT")
    fake.fail("htx", fakes.HTX_TRADE_DISABLED)

    assert _listing(client, fake, "htx") == [Market("NEO", "USDT", "neousdt")]


# Lists with entries that are not markets: each adapter keeps the good one, once.

Row = Callable[[object, object, object, bool], object]


def _rows(row: Row) -> list[object]:
    return [
        row("NEO", "USDT", "NEO-USDT", True),
        row("NEO", "USDT", "NEO-USDT", True),  # twice
        row("ETH", "BTC", "ETH-BTC", False),  # closed
        row(7, "USDT", "7-USDT", True),  # a code that is not text
        row("ABCDEFGHIJK", "USDT", "ABCDEFGHIJK-USDT", True),  # too long for a pair
        row("ETH2.S", "ETH", "ETH2.S-ETH", True),  # not a code a pair can name
        row("USDT", "USDT", "USDT-USDT", True),  # base and quote the same
        row("GAS", "USDT", None, True),  # no symbol
        row("GAS", "USDT", "x" * 101, True),  # a symbol no API has
        42,
        None,
        "NEO-USDT",
    ]


def _kraken_row(base: object, quote: object, symbol: object, open_: bool) -> object:
    wsname = f"{base}/{quote}" if isinstance(base, str) and isinstance(quote, str) else None
    return {"altname": symbol, "wsname": wsname, "status": "online" if open_ else "cancel_only"}


JUNK: dict[str, Any] = {
    "binance": {
        "symbols": _rows(
            lambda b, q, s, o: {
                "symbol": s,
                "status": "TRADING" if o else "BREAK",
                "baseAsset": b,
                "quoteAsset": q,
            }
        )
    },
    "coinbase": _rows(
        lambda b, q, s, o: {
            "id": s,
            "base_currency": b,
            "quote_currency": q,
            "status": "online" if o else "delisted",
            "trading_disabled": not o,
        }
    ),
    "kraken": {
        "error": [],
        "result": {f"PAIR{i}": row for i, row in enumerate(_rows(_kraken_row))},
    },
    "okx": {
        "code": "0",
        "msg": "",
        "data": _rows(
            lambda b, q, s, o: {
                "instId": s,
                "baseCcy": b,
                "quoteCcy": q,
                "state": "live" if o else "suspend",
            }
        ),
    },
    "bybit": {
        "retCode": 0,
        "retMsg": "OK",
        "result": {
            "category": "spot",
            "list": _rows(
                lambda b, q, s, o: {
                    "symbol": s,
                    "baseCoin": b,
                    "quoteCoin": q,
                    "status": "Trading" if o else "Closed",
                }
            ),
        },
    },
    "kucoin": {
        "code": "200000",
        "data": _rows(
            lambda b, q, s, o: {
                "symbol": s,
                "baseCurrency": b,
                "quoteCurrency": q,
                "enableTrading": o,
            }
        ),
    },
    "gate": _rows(
        lambda b, q, s, o: {
            "id": s,
            "base": b,
            "quote": q,
            "trade_status": "tradable" if o else "untradable",
        }
    ),
    "htx": {
        "status": "ok",
        "data": _rows(
            lambda b, q, s, o: {
                "symbol": s,
                "base-currency": b.lower() if isinstance(b, str) else b,
                "quote-currency": q.lower() if isinstance(q, str) else q,
                "state": "online" if o else "offline",
            }
        ),
    },
}


@pytest.mark.parametrize("name", sorted(JUNK))
def test_listing_skips_what_is_not_an_open_market(name: str) -> None:
    body = json.dumps(JUNK[name]).encode()

    assert REGISTRY[name].parse_listing(200, body) == [Market("NEO", "USDT", "NEO-USDT")]


def test_kraken_listing_keeps_limit_only_markets() -> None:
    pairs = {
        "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "status": "limit_only"},
        "XETHZUSD": {"altname": "ETHUSD", "wsname": "ETH/USD", "status": "post_only"},
        "XDGUSD": {"altname": "XDGUSD", "wsname": "XDGUSD", "status": "online"},  # no "/"
        "XDGEUR": {"altname": "XDGEUR", "status": "online"},  # no wsname
    }
    body = json.dumps({"error": [], "result": pairs}).encode()

    assert REGISTRY["kraken"].parse_listing(200, body) == [Market("BTC", "USD", "XBTUSD")]


def test_bitfinex_listing_skips_names_it_cannot_split() -> None:
    names = [
        "BTCUSD",
        "BTCUSD",
        "DOGE:USD",
        "BTCUST",
        "TESTBTC:TESTUSD",
        "BTCUSDTX",  # neither six letters nor a colon
        ":USD",
        "ETH2.S:ETH",
        42,
        None,
    ]
    body = json.dumps([names]).encode()

    assert REGISTRY["bitfinex"].parse_listing(200, body) == [
        Market("BTC", "USD", "tBTCUSD"),
        Market("DOGE", "USD", "tDOGE:USD"),
        Market("BTC", "USDT", "tBTCUST"),
    ]


@pytest.mark.parametrize("body", [[], [["BTCUSD"], ["ETHUSD"]], [{"BTCUSD": 1}]])
def test_bitfinex_listing_in_another_shape_is_a_bad_response(body: object) -> None:
    with pytest.raises(SourceError) as info:
        REGISTRY["bitfinex"].parse_listing(200, json.dumps(body).encode())

    assert info.value.kind == BAD_RESPONSE


def test_coingecko_listing_keeps_the_largest_coin_of_a_ticker() -> None:
    coins = [
        {"id": None, "symbol": "btc"},  # no id: claims nothing
        {"id": "bitcoin", "symbol": "btc"},
        {"id": "neo", "symbol": "neo"},
        {"id": "neo-imposter", "symbol": "NEO"},  # smaller, same ticker
        {"id": "a/b", "symbol": "ab"},  # an id that would not survive the symbol
        {"id": "long", "symbol": "abcdefghijk"},
        {"id": "no-ticker"},
        42,
    ]
    body = json.dumps(coins).encode()

    markets = REGISTRY["coingecko"].parse_listing(200, body)

    assert markets == [
        *(Market("BTC", quote, f"bitcoin/{quote.lower()}") for quote in ("USD", "EUR", "ETH")),
        *(Market("NEO", quote, f"neo/{quote.lower()}") for quote in COINGECKO_QUOTES),
    ]


def test_coingecko_error_object_in_a_listing_is_an_http_error() -> None:
    body = json.dumps({"status": {"error_code": 10002, "error_message": "API key missing"}})

    with pytest.raises(SourceError) as info:
        REGISTRY["coingecko"].parse_listing(200, body.encode())

    assert info.value.kind == HTTP_ERROR
    assert info.value.message == "CoinGecko answered error 10002"
