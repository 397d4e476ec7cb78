"""One local HTTP server that answers like each public market-data API the price feed reads.

Tests and benchmarks point sources at it, since the real APIs cannot be reached from where
they run; the dev stack serves its public demo feeds from ``DemoMarkets``, whose prices move.

Every API lives under its own path prefix: point a source at ``fake.base_url("binance")``
and it talks to a fake Binance at ``/binance/api/v3/ticker/price``. The prefix also proves
that adapters keep a base URL's own path, as they must behind an operator's proxy.

Each API answers two requests: a ticker (the price of one symbol) and its market list (what
it trades). A test prices a symbol with ``fake.set_price("binance", "NEOUSDT", "12.34")``: the
price is written into the answer exactly as given, as a JSON string or a JSON number
depending on the API, and the market list names the symbol under the assets it spells
(``base=``/``quote=`` say them where the name does not). ``fake.list_market("binance", "FLM",
"USDT", price="0.05")`` says the same from the other side: the market, named as that API
names it (``venue_symbol``), optionally priced, optionally closed (``trading=False``). A
symbol not priced gets that API's own "unknown symbol" answer.

A test can make an API fail (``fake.fail("okx", RATE_LIMITED)``), its tickers and market list
alike, or hold every answer back for a while (``fake.delay("kraken", 2.0)``). The answers
follow the formats each API documents, error shapes included; ``fake.requests`` records what
was asked, for checking symbols.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import permutations
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

# Failure modes every fake API knows; each answers in that API's own shape.
RATE_LIMITED = "rate_limited"
MAINTENANCE = "maintenance"
SERVER_ERROR = "server_error"  # HTTP 500 with a body that explains nothing
NOT_JSON = "not_json"  # HTTP 200 with an HTML page, as a captive proxy sends
# Variants some APIs have besides the common ones.
BINANCE_IP_BANNED = "binance_ip_banned"  # HTTP 418 after ignoring 429s
COINBASE_DELISTED = "coinbase_delisted"  # tickers only
KRAKEN_TOO_MANY_REQUESTS = "kraken_too_many_requests"
BYBIT_IP_LIMITED = "bybit_ip_limited"  # HTTP 403 for its IP rate limit
HTX_TRADE_DISABLED = "htx_trade_disabled"  # tickers only

# The price placeholder in a body, replaced by the listed price text as a bare JSON number.
_NUMBER = "__price__"
_HTML = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
_NOW_MS = 1767323045678

# Kraken answers under its long pair name, not the one asked for.
KRAKEN_RESULT_NAMES = {
    "XBTUSD": "XXBTZUSD",
    "XBTEUR": "XXBTZEUR",
    "ETHUSD": "XETHZUSD",
    "ETHEUR": "XETHZEUR",
    "ETHXBT": "XETHXXBT",
}
# Asset codes where an API's differ from ours, and Kraken's long asset names.
_KRAKEN_CODES = {"BTC": "XBT", "DOGE": "XDG"}
_KRAKEN_ASSETS = {"XBT": "XXBT", "XDG": "XXDG", "ETH": "XETH", "USD": "ZUSD", "EUR": "ZEUR"}
_BITFINEX_CODES = {"USDT": "UST"}
# CoinGecko names coins by id; an asset not here is its code in lower case.
COINGECKO_IDS = {
    "NEO": "neo",
    "GAS": "gas",
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "FLM": "flamingo-finance",
    "USDT": "tether",
    "DOGE": "dogecoin",
}
_COINGECKO_NAMES = {
    "neo": "NEO",
    "gas": "Gas",
    "bitcoin": "Bitcoin",
    "ethereum": "Ethereum",
    "flamingo-finance": "Flamingo",
    "tether": "Tether",
    "dogecoin": "Dogecoin",
}
# The assets a priced symbol's name is read as, when a test does not say what it trades.
KNOWN_ASSETS = ("NEO", "GAS", "BTC", "ETH", "FLM", "DOGE", "USDT", "USDC", "USD", "EUR")


def _bitfinex_symbol(base: str, quote: str) -> str:
    base, quote = _BITFINEX_CODES.get(base, base), _BITFINEX_CODES.get(quote, quote)
    return f"t{base}:{quote}" if len(base) > 3 or len(quote) > 3 else f"t{base}{quote}"


# Each API's name for the market of a base asset in a quote asset (both our codes).
_NAMING: dict[str, Callable[[str, str], str]] = {
    "binance": lambda base, quote: base + quote,
    "coinbase": lambda base, quote: f"{base}-{quote}",
    "kraken": lambda base, quote: _KRAKEN_CODES.get(base, base) + _KRAKEN_CODES.get(quote, quote),
    "okx": lambda base, quote: f"{base}-{quote}",
    "bybit": lambda base, quote: base + quote,
    "kucoin": lambda base, quote: f"{base}-{quote}",
    "gate": lambda base, quote: f"{base}_{quote}",
    "bitfinex": _bitfinex_symbol,
    "htx": lambda base, quote: (base + quote).lower(),
    "coingecko": lambda base, quote: f"{COINGECKO_IDS.get(base, base.lower())}/{quote.lower()}",
}


def venue_symbol(name: str, base: str, quote: str) -> str:
    """What API ``name`` calls the market of ``base`` in ``quote`` (our asset codes), e.g.
    "XBTUSD" for Kraken's BTC/USD, "tBTCUST" for Bitfinex's BTC/USDT.

    Raises:
        KeyError: no fake API is called ``name``.
    """
    return _NAMING[name](base.upper(), quote.upper())


def _spelled(name: str, symbol: str) -> tuple[str, str] | None:
    """The (base, quote) among ``KNOWN_ASSETS`` whose market API ``name`` calls ``symbol``."""
    for base, quote in permutations(KNOWN_ASSETS, 2):
        if venue_symbol(name, base, quote) == symbol:
            return base, quote
    return None


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Asked:
    source: str
    path: str
    query: dict[str, str]


@dataclass(frozen=True)
class Listed:
    """A market an API lists, in our asset codes; a closed one is listed as not trading."""

    base: str
    quote: str
    trading: bool = True


@dataclass
class Venue:
    """What one fake API knows: prices and listed markets, both by its own symbol."""

    prices: dict[str, str] = field(default_factory=dict)
    markets: dict[str, Listed] = field(default_factory=dict)

    def listed(self) -> list[tuple[str, Listed]]:
        # A copy: the demo's walker re-lists markets while answers are written.
        return list(self.markets.items())


def _json(status: int, payload: Any, price: str | None = None) -> Answer:
    text = json.dumps(payload)
    if price is not None:
        text = text.replace(json.dumps(_NUMBER), price)
    return Answer(status, text.encode())


def _html(status: int) -> Answer:
    return Answer(status, _HTML, "text/html")


def _number(price: str | None) -> float | None:
    """A listed price as a JSON number, for fields no adapter reads exactly."""
    try:
        value = Decimal(price) if price is not None else None
    except InvalidOperation:
        return None
    return float(value) if value is not None and value.is_finite() else None


# Each fake API: (path, query, what it knows, failure mode or None) -> answer.
Responder = Callable[[str, dict[str, str], Venue, str | None], Answer]


def _binance(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(
            429,
            {
                "code": -1003,
                "msg": "Too much request weight used; current limit"
                " is 6000 request weight per 1 MINUTE.",
            },
        )
    if fail == BINANCE_IP_BANNED:
        return _json(
            418,
            {
                "code": -1003,
                "msg": "Way too much request weight used; IP banned until 1700000000000.",
            },
        )
    if fail == MAINTENANCE:
        return _json(
            503,
            {
                "code": -1008,
                "msg": "Server is currently overloaded with other"
                " requests. Please try again in a few minutes.",
            },
        )
    if path == "/api/v3/exchangeInfo":
        symbols = [
            {
                "symbol": symbol,
                "status": "TRADING" if market.trading else "BREAK",
                "baseAsset": market.base,
                "baseAssetPrecision": 8,
                "quoteAsset": market.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "isSpotTradingAllowed": market.trading,
                "isMarginTradingAllowed": False,
                "filters": [],
                "permissions": [],
                "permissionSets": [["SPOT"]],
            }
            for symbol, market in venue.listed()
        ]
        info = {
            "timezone": "UTC",
            "serverTime": _NOW_MS,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }
        return _json(200, info)
    if path != "/api/v3/ticker/price":
        return _json(404, {"code": -1000, "msg": "Not found"})
    symbol = query.get("symbol", "")
    if symbol not in venue.prices:
        return _json(400, {"code": -1121, "msg": "Invalid symbol."})
    return _json(200, {"symbol": symbol, "price": venue.prices[symbol]})


def _coinbase(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, {"message": "Public rate limit exceeded"})
    if fail == MAINTENANCE:
        return _html(503)
    if path == "/products":
        products = [
            {
                "id": symbol,
                "base_currency": market.base,
                "quote_currency": market.quote,
                "quote_increment": "0.01",
                "base_increment": "0.00000001",
                "display_name": f"{market.base}/{market.quote}",
                "min_market_funds": "1",
                "margin_enabled": False,
                "post_only": False,
                "limit_only": False,
                "cancel_only": False,
                "status": "online" if market.trading else "delisted",
                "status_message": "",
                "trading_disabled": not market.trading,
                "fx_stablecoin": False,
                "max_slippage_percentage": "0.03000000",
                "auction_mode": False,
                "high_bid_limit_percentage": "",
            }
            for symbol, market in venue.listed()
        ]
        return _json(200, products)
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "products" or parts[3] != "ticker":
        return _json(404, {"message": "NotFound"})
    product = parts[2]
    if fail == COINBASE_DELISTED:
        return _json(400, {"message": "Not allowed for delisted products"})
    if product not in venue.prices:
        return _json(404, {"message": "NotFound"})
    price = venue.prices[product]
    return _json(
        200,
        {
            "ask": price,
            "bid": price,
            "volume": "1520.53467911",
            "trade_id": 86326522,
            "price": price,
            "size": "0.00057160",
            "time": "2026-01-02T03:04:05.678901Z",
        },
    )


def _kraken_pair(altname: str, market: Listed) -> dict[str, Any]:
    base = _KRAKEN_CODES.get(market.base, market.base)
    quote = _KRAKEN_CODES.get(market.quote, market.quote)
    return {
        "altname": altname,
        "wsname": f"{base}/{quote}",
        "aclass_base": "currency",
        "base": _KRAKEN_ASSETS.get(base, base),
        "aclass_quote": "currency",
        "quote": _KRAKEN_ASSETS.get(quote, quote),
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": 1,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, 0.4], [10000, 0.35]],
        "fees_maker": [[0, 0.25], [10000, 0.2]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.00005",
        "costmin": "0.5",
        "tick_size": "0.1",
        "status": "online" if market.trading else "cancel_only",
    }


def _kraken(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(200, {"error": ["EAPI:Rate limit exceeded"]})
    if fail == KRAKEN_TOO_MANY_REQUESTS:
        return _json(200, {"error": ["EGeneral:Too many requests"]})
    if fail == MAINTENANCE:
        return _json(200, {"error": ["EService:Unavailable"]})
    if path == "/0/public/AssetPairs":
        pairs = {
            KRAKEN_RESULT_NAMES.get(symbol, symbol): _kraken_pair(symbol, market)
            for symbol, market in venue.listed()
        }
        return _json(200, {"error": [], "result": pairs})
    if path != "/0/public/Ticker":
        return _json(404, {"error": ["EGeneral:Unknown method"]})
    pair = query.get("pair", "")
    if pair not in venue.prices:
        return _json(200, {"error": ["EQuery:Unknown asset pair"]})
    price = venue.prices[pair]
    ticker = {
        "a": [price, "1", "1.000"],
        "b": [price, "2", "2.000"],
        "c": [price, "0.00067643"],
        "v": ["1051.80914683", "2405.61349451"],
        "p": [price, price],
        "t": [3134, 6915],
        "l": [price, price],
        "h": [price, price],
        "o": price,
    }
    return _json(200, {"error": [], "result": {KRAKEN_RESULT_NAMES.get(pair, pair): ticker}})


def _okx(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, {"code": "50011", "msg": "Too Many Requests", "data": []})
    if fail == MAINTENANCE:
        return _json(
            503,
            {
                "code": "50001",
                "msg": "Service temporarily unavailable. Please try again later.",
                "data": [],
            },
        )
    if path == "/api/v5/public/instruments":
        if query.get("instType") != "SPOT":
            return _json(400, {"code": "51000", "msg": "Parameter instType error", "data": []})
        instruments = [
            {
                "instType": "SPOT",
                "instId": symbol,
                "uly": "",
                "instFamily": "",
                "baseCcy": market.base,
                "quoteCcy": market.quote,
                "settleCcy": "",
                "ctVal": "",
                "ctMult": "",
                "ctValCcy": "",
                "optType": "",
                "stk": "",
                "listTime": "1606468572000",
                "expTime": "",
                "lever": "",
                "tickSz": "0.0001",
                "lotSz": "0.0001",
                "minSz": "0.1",
                "ctType": "",
                "alias": "",
                "state": "live" if market.trading else "suspend",
            }
            for symbol, market in venue.listed()
        ]
        return _json(200, {"code": "0", "msg": "", "data": instruments})
    if path != "/api/v5/market/ticker":
        return _json(404, {"code": "404", "msg": "Not Found", "data": []})
    inst = query.get("instId", "")
    if inst not in venue.prices:
        return _json(200, {"code": "51001", "msg": "Instrument ID does not exist", "data": []})
    price = venue.prices[inst]
    row = {
        "instType": "SPOT",
        "instId": inst,
        "last": price,
        "lastSz": "0.1",
        "askPx": price,
        "askSz": "11",
        "bidPx": price,
        "bidSz": "5",
        "open24h": price,
        "high24h": price,
        "low24h": price,
        "volCcy24h": "2222",
        "vol24h": "2222",
        "sodUtc0": price,
        "sodUtc8": price,
        "ts": str(_NOW_MS),
    }
    return _json(200, {"code": "0", "msg": "", "data": [row]})


def _bybit(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    envelope = {"retExtInfo": {}, "time": _NOW_MS}
    if fail == RATE_LIMITED:
        return _json(
            200, {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, **envelope}
        )
    if fail == BYBIT_IP_LIMITED:
        return Answer(403, b"access too frequent", "text/plain")
    if fail == MAINTENANCE:
        return _json(
            200, {"retCode": 10016, "retMsg": "Service is restarting", "result": {}, **envelope}
        )
    if path == "/v5/market/instruments-info":
        if query.get("category") != "spot":
            return _json(
                200, {"retCode": 10001, "retMsg": "Illegal category", "result": {}, **envelope}
            )
        instruments = [
            {
                "symbol": symbol,
                "baseCoin": market.base,
                "quoteCoin": market.quote,
                "innovation": "0",
                "status": "Trading" if market.trading else "Closed",
                "marginTrading": "none",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": "0.0001",
                    "quotePrecision": "0.00000001",
                    "minOrderQty": "0.1",
                    "maxOrderQty": "100000",
                    "minOrderAmt": "1",
                    "maxOrderAmt": "2000000",
                },
                "priceFilter": {"tickSize": "0.0001"},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
            }
            for symbol, market in venue.listed()
        ]
        result = {"category": "spot", "list": instruments}
        return _json(200, {"retCode": 0, "retMsg": "OK", "result": result, **envelope})
    if path != "/v5/market/tickers":
        return Answer(404, b"", "text/plain")
    symbol = query.get("symbol", "")
    if query.get("category") != "spot" or symbol not in venue.prices:
        return _json(
            200, {"retCode": 10001, "retMsg": "Not supported symbols", "result": {}, **envelope}
        )
    price = venue.prices[symbol]
    row = {
        "symbol": symbol,
        "bid1Price": price,
        "bid1Size": "1.2",
        "ask1Price": price,
        "ask1Size": "0.8",
        "lastPrice": price,
        "prevPrice24h": price,
        "price24hPcnt": "0.0012",
        "highPrice24h": price,
        "lowPrice24h": price,
        "turnover24h": "123456.7",
        "volume24h": "45.6",
        "usdIndexPrice": price,
    }
    result = {"category": "spot", "list": [row]}
    return _json(200, {"retCode": 0, "retMsg": "OK", "result": result, **envelope})


def _kucoin(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, {"code": "429000", "msg": "Too Many Requests"})
    if fail == MAINTENANCE:
        return _html(503)
    if path == "/api/v2/symbols":
        symbols = [
            {
                "symbol": symbol,
                "name": symbol,
                "baseCurrency": market.base,
                "quoteCurrency": market.quote,
                "feeCurrency": market.quote,
                "market": market.quote,
                "baseMinSize": "0.1",
                "quoteMinSize": "0.1",
                "baseMaxSize": "10000000000",
                "quoteMaxSize": "99999999",
                "baseIncrement": "0.0001",
                "quoteIncrement": "0.000001",
                "priceIncrement": "0.000001",
                "priceLimitRate": "0.1",
                "minFunds": "0.1",
                "isMarginEnabled": False,
                "enableTrading": market.trading,
                "feeCategory": 1,
                "makerFeeCoefficient": "1.00",
                "takerFeeCoefficient": "1.00",
                "st": False,
            }
            for symbol, market in venue.listed()
        ]
        return _json(200, {"code": "200000", "data": symbols})
    if path != "/api/v1/market/orderbook/level1":
        return _json(404, {"code": "404000", "msg": "Url Not Found"})
    symbol = query.get("symbol", "")
    if symbol not in venue.prices:
        return _json(200, {"code": "200000", "data": None})
    price = venue.prices[symbol]
    data = {
        "time": _NOW_MS,
        "sequence": "14609309753",
        "price": price,
        "size": "0.5",
        "bestBid": price,
        "bestBidSize": "1.2",
        "bestAsk": price,
        "bestAskSize": "3.4",
    }
    return _json(200, {"code": "200000", "data": data})


def _gate(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, {"label": "TOO_MANY_REQUESTS", "message": "Request Rate Limit Exceeded"})
    if fail == MAINTENANCE:
        return _html(503)
    if path == "/api/v4/spot/currency_pairs":
        pairs = [
            {
                "id": symbol,
                "base": market.base,
                "base_name": market.base,
                "quote": market.quote,
                "quote_name": market.quote,
                "fee": "0.2",
                "min_base_amount": "0.01",
                "min_quote_amount": "3",
                "max_base_amount": "",
                "max_quote_amount": "5000000",
                "amount_precision": 2,
                "precision": 4,
                "trade_status": "tradable" if market.trading else "untradable",
                "sell_start": 0,
                "buy_start": 0,
                "delisting_time": 0,
                "type": "normal",
            }
            for symbol, market in venue.listed()
        ]
        return _json(200, pairs)
    if path != "/api/v4/spot/tickers":
        return _json(404, {"label": "NOT_FOUND", "message": "Not Found"})
    pair = query.get("currency_pair", "")
    if pair not in venue.prices:
        return _json(
            400, {"label": "INVALID_CURRENCY_PAIR", "message": f"Invalid currency pair {pair}"}
        )
    price = venue.prices[pair]
    row = {
        "currency_pair": pair,
        "last": price,
        "lowest_ask": price,
        "highest_bid": price,
        "change_percentage": "-0.82",
        "base_volume": "58123.21",
        "quote_volume": "712345.6",
        "high_24h": price,
        "low_24h": price,
    }
    return _json(200, [row])


def _bitfinex(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, ["error", 11010, "ratelimit: error"])
    if fail == MAINTENANCE:
        return _json(503, ["error", 20060, "maintenance"])
    if path == "/v2/conf/pub:list:pair:exchange":
        # Only the pairs open for exchange trading are in the list.
        names = [symbol.removeprefix("t") for symbol, market in venue.listed() if market.trading]
        return _json(200, [names])
    if not path.startswith("/v2/ticker/"):
        return _json(404, ["error", 10001, "not found"])
    symbol = path.removeprefix("/v2/ticker/")
    if symbol not in venue.prices:
        return _json(500, ["error", 10020, "symbol: invalid"])
    ticker = [_NUMBER, 812.5, _NUMBER, 640.1, 0.27, 0.0223, _NUMBER, 1500.7, _NUMBER, _NUMBER]
    return _json(200, ticker, price=venue.prices[symbol])


def _htx(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(
            200,
            {
                "status": "error",
                "err-code": "base-request-exceed-frequency-limit",
                "err-msg": "Frequency of requests has exceeded the limit, please try again later",
                "data": None,
            },
        )
    if fail == MAINTENANCE:
        return _json(
            200,
            {
                "status": "error",
                "err-code": "system-maintenance",
                "err-msg": "System is in maintenance!",
                "data": None,
            },
        )
    if path == "/v1/common/symbols":
        symbols = [
            {
                "base-currency": market.base.lower(),
                "quote-currency": market.quote.lower(),
                "price-precision": 4,
                "amount-precision": 4,
                "symbol-partition": "main",
                "symbol": symbol,
                "state": "online" if market.trading else "offline",
                "value-precision": 8,
                "min-order-amt": 0.01,
                "max-order-amt": 100000,
                "min-order-value": 5,
                "limit-order-min-order-amt": 0.01,
                "limit-order-max-order-amt": 100000,
                "sell-market-min-order-amt": 0.01,
                "sell-market-max-order-amt": 10000,
                "buy-market-max-order-value": 100000,
                "api-trading": "enabled",
                "tags": "",
            }
            for symbol, market in venue.listed()
        ]
        return _json(200, {"status": "ok", "data": symbols})
    if path != "/market/detail/merged":
        return _json(404, {"status": "error", "err-code": "bad-request", "err-msg": "404"})
    if fail == HTX_TRADE_DISABLED:
        return _json(
            200,
            {
                "status": "error",
                "err-code": "base-symbol-trade-disabled",
                "err-msg": "Trading is disabled for this symbol",
                "data": None,
            },
        )
    symbol = query.get("symbol", "")
    if symbol not in venue.prices:
        return _json(
            200,
            {
                "ts": _NOW_MS,
                "status": "error",
                "err-code": "invalid-parameter",
                "err-msg": "invalid symbol",
            },
        )
    tick = {
        "id": 311869842695,
        "version": 311869842695,
        "open": _NUMBER,
        "close": _NUMBER,
        "low": _NUMBER,
        "high": _NUMBER,
        "amount": 2156.3087,
        "vol": 26789.12,
        "count": 3411,
        "bid": [_NUMBER, 12.5],
        "ask": [_NUMBER, 3.1],
    }
    ch = f"market.{symbol}.detail.merged"
    answer = {"ch": ch, "status": "ok", "ts": _NOW_MS, "tick": tick}
    return _json(200, answer, venue.prices[symbol])


def _coingecko_coins(venue: Venue, currency: str) -> list[dict[str, Any]]:
    """The coins of the markets listed open, largest first: the first listed is the largest."""
    coins: dict[str, str] = {}  # id -> our code
    for symbol, market in venue.listed():
        if market.trading:
            coins.setdefault(symbol.partition("/")[0], market.base)
    rows = []
    for rank, (coin, code) in enumerate(coins.items(), 1):
        price = _number(venue.prices.get(f"{coin}/{currency}"))
        cap = 10**12 // rank
        rows.append(
            {
                "id": coin,
                "symbol": code.lower(),
                "name": _COINGECKO_NAMES.get(coin, code),
                "image": f"https://coin-images.coingecko.com/coins/images/{rank}/large/{coin}.png",
                "current_price": price,
                "market_cap": cap,
                "market_cap_rank": rank,
                "fully_diluted_valuation": cap,
                "total_volume": cap // 20,
                "high_24h": price,
                "low_24h": price,
                "price_change_24h": 0,
                "price_change_percentage_24h": 0,
                "market_cap_change_24h": 0,
                "market_cap_change_percentage_24h": 0,
                "circulating_supply": 1000000,
                "total_supply": 1000000,
                "max_supply": None,
                "ath": price,
                "atl": price,
                "roi": None,
                "last_updated": "2026-01-02T03:04:05.678Z",
            }
        )
    return rows


def _coingecko(path: str, query: dict[str, str], venue: Venue, fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(
            429, {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}
        )
    if fail == MAINTENANCE:
        return _html(503)
    if path == "/api/v3/coins/markets":
        currency = query.get("vs_currency")
        if not currency:
            return _json(400, {"error": "Missing parameter vs_currency"})
        try:
            size, page = int(query.get("per_page", "100")), int(query.get("page", "1"))
        except ValueError:
            return _json(400, {"error": "Invalid per_page or page"})
        coins = _coingecko_coins(venue, currency)
        return _json(200, coins[(page - 1) * size : page * size])
    if path != "/api/v3/simple/price":
        return _json(404, {"error": "Not Found"})
    # Priced as "neo/usd": an id it knows with a currency it quotes.
    coin, currency = query.get("ids", ""), query.get("vs_currencies", "")
    known = {key.split("/")[0] for key in venue.prices}
    if coin not in known:
        return _json(200, {})
    key = f"{coin}/{currency}"
    if key not in venue.prices:
        return _json(200, {coin: {}})
    return _json(200, {coin: {currency: _NUMBER}}, price=venue.prices[key])


RESPONDERS: dict[str, Responder] = {
    "binance": _binance,
    "coinbase": _coinbase,
    "kraken": _kraken,
    "okx": _okx,
    "bybit": _bybit,
    "kucoin": _kucoin,
    "gate": _gate,
    "bitfinex": _bitfinex,
    "htx": _htx,
    "coingecko": _coingecko,
}


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when a round asks ten sources at once,
    # and the kernel retries a dropped connection only a second later.
    request_queue_size = 128


class FakeMarkets:
    def __init__(self) -> None:
        self.venues: dict[str, Venue] = {name: Venue() for name in RESPONDERS}
        self.failures: dict[str, str] = {}
        self.delays: dict[str, float] = {}
        self.requests: list[Asked] = []
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                # "/binance/api/v3/ticker/price" -> "binance", "/api/v3/ticker/price"
                _, name, rest = (url.path + "/").split("/", 2)
                rest = "/" + rest.removesuffix("/")
                responder = RESPONDERS.get(name)
                if responder is None:
                    self._send(Answer(404, b"no such fake API", "text/plain"))
                    return
                query = dict(parse_qsl(url.query))
                fake.requests.append(Asked(name, rest, query))
                delay = fake.delays.get(name, 0.0)
                if delay:
                    fake._release.wait(delay)
                failure = fake.failures.get(name)
                if failure == SERVER_ERROR:
                    answer = Answer(500, b"Internal Server Error", "text/plain")
                elif failure == NOT_JSON:
                    answer = Answer(200, _HTML, "text/html")
                else:
                    answer = responder(rest, query, fake.venues[name], failure)
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: the point of a delay test

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # Each test starts and stops a server: a short poll interval keeps stopping quick.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def base_url(self, name: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/{name}"

    def set_price(
        self,
        name: str,
        symbol: str,
        price: str,
        *,
        base: str | None = None,
        quote: str | None = None,
    ) -> None:
        """Price ``symbol`` on API ``name`` (the text goes into its answers exactly as given),
        and list it, open, unless it is listed already: as ``base`` in ``quote`` when given,
        else as the two ``KNOWN_ASSETS`` its name spells. A name that spells none (a test's
        "SOMETHINGELSE") is priced but not listed.

        Raises:
            ValueError: only one of ``base`` and ``quote`` is given.
        """
        if (base is None) != (quote is None):
            raise ValueError("set_price takes both base and quote, or neither")
        venue = self.venues[name]
        venue.prices[symbol] = price
        if base is not None and quote is not None:
            venue.markets[symbol] = Listed(base.upper(), quote.upper())
        elif symbol not in venue.markets:
            spelled = _spelled(name, symbol)
            if spelled is not None:
                venue.markets[symbol] = Listed(*spelled)

    def list_market(
        self,
        name: str,
        base: str,
        quote: str,
        *,
        price: str | None = None,
        symbol: str | None = None,
        trading: bool = True,
    ) -> str:
        """List the market of ``base`` in ``quote`` (our codes) on API ``name``, open or
        closed, under ``symbol`` or the name the API gives it (``venue_symbol``); price it
        when ``price`` is given. Returns the symbol.

        The first market listed on CoinGecko is its largest coin, and so on down.
        """
        symbol = symbol if symbol is not None else venue_symbol(name, base, quote)
        venue = self.venues[name]
        venue.markets[symbol] = Listed(base.upper(), quote.upper(), trading)
        if price is not None:
            venue.prices[symbol] = price
        return symbol

    def fail(self, name: str, mode: str) -> None:
        self.failures[name] = mode

    def delay(self, name: str, seconds: float) -> None:
        self.delays[name] = seconds

    def asked(self, name: str) -> list[Asked]:
        return [asked for asked in self.requests if asked.source == name]

    def __enter__(self) -> FakeMarkets:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def _significant(value: Decimal, digits: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1))


class DemoMarkets(FakeMarkets):
    """The dev stack's markets: each API lists a handful of markets of NEO, GAS, BTC, ETH and
    FLM (Flamingo), FLM in USDT on the exchanges without dollar markets, in USD on those
    with, and in BTC on some. Each API prices a little off the others, and every asset's
    dollar value moves in a small random walk every ``every`` s."""

    # Each asset's dollar value when the stack starts; the dollar, USDT and the euro stay put.
    LEVELS: ClassVar[Mapping[str, Decimal]] = {
        "NEO": Decimal("12.00"),
        "GAS": Decimal("4.50"),
        "BTC": Decimal("60000"),
        "ETH": Decimal("3000"),
        "FLM": Decimal("0.05"),
        "USD": Decimal(1),
        "USDT": Decimal(1),
        "EUR": Decimal("1.08"),
    }
    MOVING: ClassVar[tuple[str, ...]] = ("NEO", "GAS", "BTC", "ETH", "FLM")
    MARKETS: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "binance": (
            *("NEO/USDT", "GAS/USDT", "BTC/USDT", "ETH/USDT", "FLM/USDT"),
            *("NEO/BTC", "GAS/BTC", "ETH/BTC", "FLM/BTC"),
        ),
        "coinbase": ("BTC/USD", "ETH/USD", "ETH/BTC", "FLM/USD"),
        "kraken": ("BTC/USD", "BTC/EUR", "ETH/USD", "ETH/EUR", "ETH/BTC", "FLM/USD"),
        "okx": ("NEO/USDT", "BTC/USDT", "ETH/USDT", "FLM/USDT", "NEO/BTC", "ETH/BTC"),
        "bybit": ("BTC/USDT", "ETH/USDT", "FLM/USDT", "ETH/BTC"),
        "kucoin": (
            *("NEO/USDT", "GAS/USDT", "BTC/USDT", "ETH/USDT", "FLM/USDT"),
            *("NEO/BTC", "GAS/BTC"),
        ),
        "gate": ("NEO/USDT", "GAS/USDT", "BTC/USDT", "ETH/USDT", "FLM/USDT"),
        "bitfinex": (
            *("NEO/USD", "BTC/USD", "ETH/USD", "FLM/USD", "USDT/USD"),
            *("NEO/BTC", "ETH/BTC"),
        ),
        "htx": (
            *("NEO/USDT", "GAS/USDT", "BTC/USDT", "ETH/USDT", "FLM/USDT"),
            *("NEO/BTC", "FLM/BTC"),
        ),
        # CoinGecko lists coins, each in every currency it quotes; largest coin first.
        "coingecko": tuple(
            f"{coin}/{currency}"
            for coin in ("BTC", "ETH", "NEO", "GAS", "FLM")
            for currency in ("USD", "EUR", "BTC", "ETH")
            if coin != currency
        ),
    }

    def __init__(self, every: float = 2.0) -> None:
        super().__init__()
        self.every = every
        self._stop = threading.Event()
        self._walker = threading.Thread(target=self._walk, daemon=True)
        self._random = random.Random(7)
        self.levels = dict(self.LEVELS)

    def __enter__(self) -> DemoMarkets:
        super().__enter__()
        self._publish()
        self._walker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        super().__exit__(*exc)

    def _walk(self) -> None:
        while not self._stop.wait(self.every):
            for asset in self.MOVING:
                step = Decimal(self._random.uniform(-0.004, 0.004)).quantize(Decimal("1e-6"))
                self.levels[asset] = _significant(self.levels[asset] * (1 + step), 8)
            self._publish()

    def _publish(self) -> None:
        for i, name in enumerate(sorted(self.MARKETS)):
            # Each API a few basis points off the others, as real markets are.
            spread = Decimal(i - 4) * Decimal("0.0003")
            for pair in self.MARKETS[name]:
                base, quote = pair.split("/")
                price = _significant(self.levels[base] / self.levels[quote] * (1 + spread), 6)
                self.list_market(name, base, quote, price=f"{price:f}")
