from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

import httpx
import pytest

from neosl.config import PRICE_SOURCE_URLS
from neosl_devstack import markets as fakes
from neosl_devstack.markets import Asked, FakeMarkets
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
    SourceError,
    describe,
    fetch,
    serving,
)
from neosl_pricefeed.sources.bitfinex import Bitfinex


@dataclass(frozen=True)
class Case:
    name: str
    pair: str
    symbol: str  # what the source calls the pair
    path: str  # where the request goes, under the base URL
    query: dict[str, str]
    unsupported: tuple[str, ...]
    errors: tuple[tuple[str, str], ...] = ()  # the source's own failure modes and their kind

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        "binance",
        "NEO/USD",
        "NEOUSDT",
        "/api/v3/ticker/price",
        {"symbol": "NEOUSDT"},
        ("XRP/USD", "NEO/EUR"),
        ((fakes.BINANCE_IP_BANNED, RATE_LIMITED),),
    ),
    Case(
        "coinbase",
        "BTC/USD",
        "BTC-USD",
        "/products/BTC-USD/ticker",
        {},
        ("NEO/USD", "GAS/USD", "BTC/USDT"),
        ((fakes.COINBASE_DELISTED, UNKNOWN_SYMBOL),),
    ),
    Case(
        "kraken",
        "BTC/USD",
        "XBTUSD",
        "/0/public/Ticker",
        {"pair": "XBTUSD"},
        ("NEO/USD", "BTC/USDT"),
        ((fakes.KRAKEN_TOO_MANY_REQUESTS, RATE_LIMITED),),
    ),
    Case(
        "okx",
        "NEO/USD",
        "NEO-USDT",
        "/api/v5/market/ticker",
        {"instId": "NEO-USDT"},
        ("GAS/USD", "NEO/EUR"),
    ),
    Case(
        "bybit",
        "BTC/USD",
        "BTCUSDT",
        "/v5/market/tickers",
        {"category": "spot", "symbol": "BTCUSDT"},
        ("NEO/USD", "BTC/EUR"),
        ((fakes.BYBIT_IP_LIMITED, RATE_LIMITED),),
    ),
    Case(
        "kucoin",
        "NEO/USD",
        "NEO-USDT",
        "/api/v1/market/orderbook/level1",
        {"symbol": "NEO-USDT"},
        ("XRP/USD", "NEO/EUR"),
    ),
    Case(
        "gate",
        "NEO/USD",
        "NEO_USDT",
        "/api/v4/spot/tickers",
        {"currency_pair": "NEO_USDT"},
        ("XRP/USD", "NEO/EUR"),
    ),
    Case(
        "bitfinex",
        "NEO/USD",
        "tNEOUSD",
        "/v2/ticker/tNEOUSD",
        {},
        ("GAS/USD", "NEO/USDT"),
    ),
    Case(
        "htx",
        "NEO/USD",
        "neousdt",
        "/market/detail/merged",
        {"symbol": "neousdt"},
        ("XRP/USD", "NEO/EUR"),
        ((fakes.HTX_TRADE_DISABLED, UNKNOWN_SYMBOL),),
    ),
    Case(
        "coingecko",
        "NEO/USD",
        "neo/usd",
        "/api/v3/simple/price",
        {"ids": "neo", "vs_currencies": "usd", "precision": "full"},
        ("XRP/USD", "NEO/USDT"),
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
        bases: ClassVar[frozenset[str]] = frozenset({"DOGE"})
        quotes: ClassVar[frozenset[str]] = frozenset({"USD", "USDT"})

    assert WideBitfinex().symbol("DOGE/USD") == "tDOGE:USD"


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
def test_unserved_pair_is_refused_before_asking(case: Case) -> None:
    with pytest.raises(SourceError) as info:
        REGISTRY[case.name].request(case.unsupported[0], "http://127.0.0.1:9")

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
