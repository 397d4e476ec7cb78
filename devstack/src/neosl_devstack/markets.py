"""One local HTTP server that answers like each public market-data API the price feed reads.

Tests and benchmarks point sources at it, since the real APIs cannot be reached from where
they run; the dev stack serves its public demo feeds from ``DemoMarkets``, whose prices move.

Every API lives under its own path prefix: point a source at ``fake.base_url("binance")``
and it talks to a fake Binance at ``/binance/api/v3/ticker/price``. The prefix also proves
that adapters keep a base URL's own path, as they must behind an operator's proxy.

A test lists the symbols an API knows (``fake.set_price("binance", "NEOUSDT", "12.34")``; the
price is written into the answer exactly as given, as a JSON string or a JSON number
depending on the API); a symbol not listed gets that API's own "unknown symbol" answer. It
can make an API fail (``fake.fail("okx", RATE_LIMITED)``) or hold every answer back for a
while (``fake.delay("kraken", 2.0)``). The answers follow the formats each API documents,
error shapes included; ``fake.requests`` records what was asked, for checking symbols.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from neosl_pricefeed.sources import REGISTRY

# Failure modes every fake API knows; each answers in that API's own shape.
RATE_LIMITED = "rate_limited"
MAINTENANCE = "maintenance"
SERVER_ERROR = "server_error"  # HTTP 500 with a body that explains nothing
NOT_JSON = "not_json"  # HTTP 200 with an HTML page, as a captive proxy sends
# Variants some APIs have besides the common ones.
BINANCE_IP_BANNED = "binance_ip_banned"  # HTTP 418 after ignoring 429s
COINBASE_DELISTED = "coinbase_delisted"
KRAKEN_TOO_MANY_REQUESTS = "kraken_too_many_requests"
BYBIT_IP_LIMITED = "bybit_ip_limited"  # HTTP 403 for its IP rate limit
HTX_TRADE_DISABLED = "htx_trade_disabled"

# The price placeholder in a body, replaced by the listed price text as a bare JSON number.
_NUMBER = "__price__"
_HTML = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"

# Kraken answers under its long pair name, not the one asked for.
KRAKEN_RESULT_NAMES = {
    "XBTUSD": "XXBTZUSD",
    "XBTEUR": "XXBTZEUR",
    "ETHUSD": "XETHZUSD",
    "ETHEUR": "XETHZEUR",
    "ETHXBT": "XETHXXBT",
}


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


def _json(status: int, payload: Any, price: str | None = None) -> Answer:
    text = json.dumps(payload)
    if price is not None:
        text = text.replace(json.dumps(_NUMBER), price)
    return Answer(status, text.encode())


def _html(status: int) -> Answer:
    return Answer(status, _HTML, "text/html")


# Each fake API: (path, query, listed prices, failure mode or None) -> answer.
Responder = Callable[[str, dict[str, str], dict[str, str], str | None], Answer]


def _binance(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
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
    if path != "/api/v3/ticker/price":
        return _json(404, {"code": -1000, "msg": "Not found"})
    symbol = query.get("symbol", "")
    if symbol not in prices:
        return _json(400, {"code": -1121, "msg": "Invalid symbol."})
    return _json(200, {"symbol": symbol, "price": prices[symbol]})


def _coinbase(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, {"message": "Public rate limit exceeded"})
    if fail == MAINTENANCE:
        return _html(503)
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "products" or parts[3] != "ticker":
        return _json(404, {"message": "NotFound"})
    product = parts[2]
    if fail == COINBASE_DELISTED:
        return _json(400, {"message": "Not allowed for delisted products"})
    if product not in prices:
        return _json(404, {"message": "NotFound"})
    price = prices[product]
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


def _kraken(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(200, {"error": ["EAPI:Rate limit exceeded"]})
    if fail == KRAKEN_TOO_MANY_REQUESTS:
        return _json(200, {"error": ["EGeneral:Too many requests"]})
    if fail == MAINTENANCE:
        return _json(200, {"error": ["EService:Unavailable"]})
    if path != "/0/public/Ticker":
        return _json(404, {"error": ["EGeneral:Unknown method"]})
    pair = query.get("pair", "")
    if pair not in prices:
        return _json(200, {"error": ["EQuery:Unknown asset pair"]})
    price = prices[pair]
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


def _okx(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
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
    if path != "/api/v5/market/ticker":
        return _json(404, {"code": "404", "msg": "Not Found", "data": []})
    inst = query.get("instId", "")
    if inst not in prices:
        return _json(200, {"code": "51001", "msg": "Instrument ID does not exist", "data": []})
    price = prices[inst]
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
        "ts": "1767323045678",
    }
    return _json(200, {"code": "0", "msg": "", "data": [row]})


def _bybit(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
    envelope = {"retExtInfo": {}, "time": 1767323045678}
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
    if path != "/v5/market/tickers":
        return Answer(404, b"", "text/plain")
    symbol = query.get("symbol", "")
    if query.get("category") != "spot" or symbol not in prices:
        return _json(
            200, {"retCode": 10001, "retMsg": "Not supported symbols", "result": {}, **envelope}
        )
    price = prices[symbol]
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


def _kucoin(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, {"code": "429000", "msg": "Too Many Requests"})
    if fail == MAINTENANCE:
        return _html(503)
    if path != "/api/v1/market/orderbook/level1":
        return _json(404, {"code": "404000", "msg": "Url Not Found"})
    symbol = query.get("symbol", "")
    if symbol not in prices:
        return _json(200, {"code": "200000", "data": None})
    price = prices[symbol]
    data = {
        "time": 1767323045678,
        "sequence": "14609309753",
        "price": price,
        "size": "0.5",
        "bestBid": price,
        "bestBidSize": "1.2",
        "bestAsk": price,
        "bestAskSize": "3.4",
    }
    return _json(200, {"code": "200000", "data": data})


def _gate(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, {"label": "TOO_MANY_REQUESTS", "message": "Request Rate Limit Exceeded"})
    if fail == MAINTENANCE:
        return _html(503)
    if path != "/api/v4/spot/tickers":
        return _json(404, {"label": "NOT_FOUND", "message": "Not Found"})
    pair = query.get("currency_pair", "")
    if pair not in prices:
        return _json(
            400, {"label": "INVALID_CURRENCY_PAIR", "message": f"Invalid currency pair {pair}"}
        )
    price = prices[pair]
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


def _bitfinex(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
    if fail == RATE_LIMITED:
        return _json(429, ["error", 11010, "ratelimit: error"])
    if fail == MAINTENANCE:
        return _json(503, ["error", 20060, "maintenance"])
    if not path.startswith("/v2/ticker/"):
        return _json(404, ["error", 10001, "not found"])
    symbol = path.removeprefix("/v2/ticker/")
    if symbol not in prices:
        return _json(500, ["error", 10020, "symbol: invalid"])
    ticker = [_NUMBER, 812.5, _NUMBER, 640.1, 0.27, 0.0223, _NUMBER, 1500.7, _NUMBER, _NUMBER]
    return _json(200, ticker, price=prices[symbol])


def _htx(path: str, query: dict[str, str], prices: dict[str, str], fail: str | None) -> Answer:
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
    if path != "/market/detail/merged":
        return _json(404, {"status": "error", "err-code": "bad-request", "err-msg": "404"})
    symbol = query.get("symbol", "")
    if symbol not in prices:
        return _json(
            200,
            {
                "ts": 1767323045678,
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
    return _json(200, {"ch": ch, "status": "ok", "ts": 1767323045678, "tick": tick}, prices[symbol])


def _coingecko(
    path: str, query: dict[str, str], prices: dict[str, str], fail: str | None
) -> Answer:
    if fail == RATE_LIMITED:
        return _json(
            429, {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}
        )
    if fail == MAINTENANCE:
        return _html(503)
    if path != "/api/v3/simple/price":
        return _json(404, {"error": "Not Found"})
    # Listed as "neo/usd": an id it knows with a currency it quotes.
    coin, currency = query.get("ids", ""), query.get("vs_currencies", "")
    known = {key.split("/")[0] for key in prices}
    if coin not in known:
        return _json(200, {})
    key = f"{coin}/{currency}"
    if key not in prices:
        return _json(200, {coin: {}})
    return _json(200, {coin: {currency: _NUMBER}}, price=prices[key])


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
        self.prices: dict[str, dict[str, str]] = {name: {} for name in RESPONDERS}
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
                    answer = responder(rest, query, fake.prices[name], failure)
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

    def set_price(self, name: str, symbol: str, price: str) -> None:
        self.prices[name][symbol] = price

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


class DemoMarkets(FakeMarkets):
    """The dev stack's markets: NEO/USD and GAS/USD on every source that serves them, each
    source a little off the others, all moving in a small random walk every ``every`` s."""

    BASES: ClassVar[dict[str, Decimal]] = {"NEO/USD": Decimal("12.00"), "GAS/USD": Decimal("4.50")}

    def __init__(self, every: float = 2.0) -> None:
        super().__init__()
        self.every = every
        self._stop = threading.Event()
        self._walker = threading.Thread(target=self._walk, daemon=True)
        self._random = random.Random(7)
        self.levels = dict(self.BASES)

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
            for pair, level in self.levels.items():
                step = Decimal(self._random.uniform(-0.004, 0.004)).quantize(Decimal("1e-6"))
                self.levels[pair] = (level * (1 + step)).quantize(Decimal("1e-4"))
            self._publish()

    def _publish(self) -> None:
        for i, (name, source) in enumerate(sorted(REGISTRY.items())):
            for pair, level in self.levels.items():
                if source.serves(pair):
                    # Each source a few basis points off the others, as real markets are.
                    spread = Decimal(i - 4) * Decimal("0.0003")
                    price = (level * (1 + spread)).quantize(Decimal("1e-4"))
                    self.set_price(name, source.symbol(pair), str(price))
