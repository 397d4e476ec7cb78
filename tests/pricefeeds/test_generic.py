"""Generic price sources: validation (``neosl.pricefeeds.definitions``), paths
(``neosl.pricefeeds.jsonpath``) and fetching (``neosl_pricefeed.generic``) against a real local
HTTP server behind the real SSRF guard."""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.orm import Session

from neosl.config import Settings, load_settings, new_key
from neosl.errors import InvalidInput
from neosl.functions.netguard import Fetcher
from neosl.pricefeeds import definitions, jsonpath
from neosl_pricefeed.generic import ask
from neosl_pricefeed.sources import (
    BAD_RESPONSE,
    HTTP_ERROR,
    MAINTENANCE,
    RATE_LIMITED,
    TIMEOUT,
    UNKNOWN_SYMBOL,
    UNREACHABLE,
    SourceError,
)
from neosl_pricefeed.sources.base import MAX_BODY_BYTES
from tests.serving import serving

SECRET = "s3cret-Value-7f2a"
SLOW_SECONDS = 1.5
SHORT_TIMEOUT = 0.3

# ---------------------------------------------------------------------------------------------
# Validation


@pytest.fixture(scope="module")
def offline() -> Settings:
    """Settings of no running server: validation reads only limits and keys from them."""
    key = new_key()
    return load_settings(
        {
            "DATABASE_URL": "postgresql://u@db.example:5432/neosl",
            "REDIS_URL": "redis://cache.example:6379/0",
            "NEO_RPC_URL": "http://neo.example:10332",
            "NSL_SECRET_KEY": key,
            "NSL_SECRETS_KEY": key,
        }
    )


def validate(
    db: Session, offline: Settings, sources: Any, aggregation: str = "median"
) -> list[dict[str, Any]]:
    fields = {
        "asset_pair": "NEO/USD",
        "frequency": 60,
        "sources": sources,
        "aggregation": aggregation,
        "deviation": None,
        "heartbeat": None,
        "min_sources": 1,
        "target": None,
        "usdt_as_usd": True,
    }
    result: list[dict[str, Any]] = definitions.validated(db, offline, fields)["sources"]
    return result


def invalid_field(db: Session, offline: Settings, sources: Any, aggregation: str = "median") -> str:
    with pytest.raises(InvalidInput) as caught:
        validate(db, offline, sources, aggregation)
    assert caught.value.details is not None
    (field,) = caught.value.details
    return str(field)


def test_generic_sources_are_normalised(db: Session, offline: Settings) -> None:
    got = validate(
        db,
        offline,
        [
            "binance",
            {"url": "https://api.example.com/v1/neo", "json_path": "$.data.price"},
            {
                "url": "http://10.0.0.5:8080/ticker?pair=NEO-USD",
                "json_path": "$.result[0]['last']",
                "headers": {"X-Api-Key": "{{secrets.API_KEY}}", "Accept": "application/json"},
                "name": "my-feed_1.0",
            },
        ],
    )
    assert got == [
        {"name": "binance", "market": "NEO/USDT"},
        {
            "name": "http:api.example.com",
            "url": "https://api.example.com/v1/neo",
            "json_path": "$.data.price",
            "headers": {},
        },
        {
            "name": "http:my-feed_1.0",
            "url": "http://10.0.0.5:8080/ticker?pair=NEO-USD",
            "json_path": "$.result[0]['last']",
            "headers": {"X-Api-Key": "{{secrets.API_KEY}}", "Accept": "application/json"},
        },
    ]
    assert [definitions.is_generic(s) for s in got] == [False, True, True]
    assert definitions.secret_names(got[0]) == set()
    assert definitions.secret_names(got[1]) == set()
    assert definitions.secret_names(got[2]) == {"API_KEY"}
    # A stored feed is validated again when it changes: the normalised form reads the same.
    assert validate(db, offline, got) == got


def test_generic_sources_take_weights_like_named_ones(db: Session, offline: Settings) -> None:
    got = validate(
        db,
        offline,
        [
            {"name": "binance", "weight": 1},
            {"url": "https://a.example/p", "json_path": "$", "weight": "2.5"},
        ],
        aggregation="weighted",
    )
    assert got[1] == {
        "name": "http:a.example",
        "url": "https://a.example/p",
        "json_path": "$",
        "headers": {},
        "weight": "2.5",
    }
    item = {"url": "https://a.example/p", "json_path": "$"}
    assert invalid_field(db, offline, [item], "weighted") == "sources[0].weight"
    assert invalid_field(db, offline, [{**item, "weight": 1}]) == "sources[0].weight"
    assert invalid_field(db, offline, [{**item, "weight": 0}], "weighted") == "sources[0].weight"


def test_secret_names_lists_every_reference(db: Session, offline: Settings) -> None:
    (source,) = validate(
        db,
        offline,
        [
            {
                "url": "https://a.example/p",
                "json_path": "$.p",
                "headers": {
                    "Authorization": "Bearer {{secrets.TOKEN}}",
                    "X-Pair": "{{secrets.ID}}:{{secrets.KEY_2}}",
                },
            }
        ],
    )
    assert definitions.secret_names(source) == {"TOKEN", "ID", "KEY_2"}


GOOD = {"url": "https://a.example/p", "json_path": "$.p"}


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"json_path": "$.p"}, "sources[1].url"),
        ({**GOOD, "url": 42}, "sources[1].url"),
        ({**GOOD, "url": "ftp://a.example/p"}, "sources[1].url"),
        ({**GOOD, "url": "file:///etc/passwd"}, "sources[1].url"),
        ({**GOOD, "url": "https:///p"}, "sources[1].url"),
        ({**GOOD, "url": "https://user:pw@a.example/p"}, "sources[1].url"),
        ({**GOOD, "url": "https://a.example/a b"}, "sources[1].url"),
        ({**GOOD, "url": "https://a.example\\@b.example/"}, "sources[1].url"),
        ({**GOOD, "url": "https://a.example:99999/"}, "sources[1].url"),
        ({**GOOD, "url": "https://a..example/"}, "sources[1].url"),
        ({**GOOD, "url": "https://a.example/" + "x" * 2048}, "sources[1].url"),
        ({"url": "https://a.example/p"}, "sources[1].json_path"),
        ({**GOOD, "json_path": "data.price"}, "sources[1].json_path"),
        ({**GOOD, "json_path": "$.data[-1]"}, "sources[1].json_path"),
        ({**GOOD, "json_path": "$.data[*]"}, "sources[1].json_path"),
        ({**GOOD, "json_path": "$['unterminated]"}, "sources[1].json_path"),
        ({**GOOD, "headers": "X-Key: 1"}, "sources[1].headers"),
        ({**GOOD, "headers": {f"X-H{i}": "v" for i in range(17)}}, "sources[1].headers"),
        ({**GOOD, "headers": {"Bad Name": "v"}}, "sources[1].headers"),
        ({**GOOD, "headers": {"X-Key": 1}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "a\r\nX-Evil: 1"}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "a\nb"}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "x" * 1025}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "€"}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "{{secrets.bad-name}}"}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "{{secret.KEY}}"}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "{{secrets.KEY}"}}, "sources[1].headers.X-Key"),
        ({**GOOD, "headers": {"X-Key": "a", "x-key": "b"}}, "sources[1].headers.x-key"),
        ({**GOOD, "name": "has space"}, "sources[1].name"),
        ({**GOOD, "name": "x" * 41}, "sources[1].name"),
        ({**GOOD, "name": 7}, "sources[1].name"),
        ({**GOOD, "method": "POST"}, "sources[1]"),
        ({**GOOD, "name": "other", "serves": ["NEO/USD"]}, "sources[1]"),
    ],
)
def test_each_bad_field_is_named(
    db: Session, offline: Settings, item: dict[str, Any], field: str
) -> None:
    assert invalid_field(db, offline, ["binance", item]) == field


def test_a_generic_name_is_unique_in_the_feed(db: Session, offline: Settings) -> None:
    same_host = [GOOD, {**GOOD, "json_path": "$.q"}]
    assert invalid_field(db, offline, same_host) == "sources[1].name"
    assert invalid_field(db, offline, [GOOD, {**GOOD, "name": "a.example"}]) == "sources[1].name"
    labelled = [GOOD, {**GOOD, "json_path": "$.q", "name": "second"}]
    assert [s["name"] for s in validate(db, offline, labelled)] == ["http:a.example", "http:second"]


def test_a_generic_source_serves_any_pair(db: Session, offline: Settings) -> None:
    fields = {
        "asset_pair": "XYZ/EUR",
        "frequency": 60,
        "sources": [GOOD],
        "aggregation": "median",
        "deviation": None,
        "heartbeat": None,
        "min_sources": 1,
        "target": None,
    }
    assert definitions.validated(db, offline, fields)["sources"][0]["name"] == "http:a.example"


def test_default_label_of_an_address_host(db: Session, offline: Settings) -> None:
    (source,) = validate(db, offline, [{"url": "http://[2001:db8::1]:8080/", "json_path": "$"}])
    assert source["name"] == "http:2001-db8--1"


# ---------------------------------------------------------------------------------------------
# Paths


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", ()),
        ("$.data.price", ("data", "price")),
        ("$.result[0].last", ("result", 0, "last")),
        ('$["USD"]["rate"]', ("USD", "rate")),
        ("$['a b'][12]", ("a b", 12)),
        ('$["quote \\" and \\\\ slash"]', ('quote " and \\ slash',)),
        ("$['']", ("",)),
        ("$.24h-change", ("24h-change",)),
    ],
)
def test_paths_parse(path: str, steps: tuple[jsonpath.Step, ...]) -> None:
    parsed = jsonpath.parse(path)
    assert parsed.steps == steps
    assert jsonpath.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    "path",
    [
        None,
        3,
        "",
        "data",
        "$.",
        "$..a",
        "$.a.",
        "$[-1]",
        "$[01]",
        "$[1.5]",
        "$[*]",
        "$.a[?(@)]",
        "$['a]",
        '$["a\\n"]',
        "$[12345678]",
        "$" + ".a" * 33,
        "$." + "a" * 300,
        " $.a",
    ],
)
def test_bad_paths_are_refused(path: object) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        jsonpath.parse(path)


def test_paths_find_one_value() -> None:
    document = {"data": {"price": Decimal("1.5")}, "result": [{"last": "2"}], "USD": {"rate": 3}}
    assert jsonpath.parse("$.data.price").find(document) == Decimal("1.5")
    assert jsonpath.parse("$.result[0].last").find(document) == "2"
    assert jsonpath.parse('$["USD"]["rate"]').find(document) == 3
    assert jsonpath.parse("$").find(document) is document


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.data.volume", '$.data has no key "volume"'),
        ("$.result[1]", "$.result has no item 1"),
        ("$.result.last", "$.result is a list, not an object"),
        ("$.data[0]", "$.data is an object, not a list"),
        ("$.name.first", "$.name is a string, not an object"),
        ("$.data.price.x", "$.data.price is a number, not an object"),
    ],
)
def test_missing_values_are_described_without_the_document(path: str, message: str) -> None:
    document = {"data": {"price": Decimal("1.5")}, "result": [{"last": "2"}], "name": SECRET}
    with pytest.raises(LookupError) as caught:
        jsonpath.parse(path).find(document)
    assert str(caught.value) == message


# ---------------------------------------------------------------------------------------------
# Fetching


class Upstream(ThreadingHTTPServer):
    """A price API on 127.0.0.1 that answers by path and records the headers it got."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


def echo(headers: dict[str, str]) -> str:
    return json.dumps({"error": "bad request", "you_sent": headers})


# path -> (status, content type, body); bodies that need the request are built in do_GET.
ANSWERS: dict[str, tuple[int, str, str]] = {
    "/number": (200, "application/json", '{"data": {"price": 0.12345678901234567890123}}'),
    "/string": (200, "application/json", '{"result": [{"last": "12.5"}]}'),
    "/bare": (200, "application/json", "42"),
    "/status/429": (429, "application/json", '{"error": "slow down"}'),
    "/status/503": (503, "text/html", "<html>maintenance</html>"),
    "/status/404": (404, "application/json", '{"error": "no such symbol"}'),
    "/status/500": (500, "text/plain", "internal error"),
    "/status/400": (400, "application/json", '{"p": "1"}'),
    "/html": (200, "text/html", "<html><body>1.5</body></html>"),
    "/huge": (200, "application/json", '{"p": 1e13}'),
    "/huge-int": (200, "application/json", '{"p": 10000000000000}'),
    "/negative": (200, "application/json", '{"p": "-1.5"}'),
    "/zero": (200, "application/json", '{"p": 0}'),
    "/nan": (200, "application/json", '{"p": NaN}'),
    "/infinity": (200, "application/json", '{"p": "Infinity"}'),
    "/words": (200, "application/json", '{"p": "one dollar"}'),
    "/bool": (200, "application/json", '{"p": true}'),
    "/null": (200, "application/json", '{"p": null}'),
    "/nested": (200, "application/json", '{"p": {"value": "1"}}'),
    "/deep": (200, "application/json", "[" * 100_000 + "]" * 100_000),
    "/large": (200, "application/json", '{"p": "1", "pad": "' + "x" * MAX_BODY_BYTES + '"}'),
}


class Handler(BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        headers = dict(self.headers.items())
        with self.server.lock:
            self.server.seen[path] = headers
        if path == "/slow":
            time.sleep(SLOW_SECONDS)  # longer than the short timeout
            status, kind, body = 200, "application/json", '{"p": "1"}'
        elif path == "/keyed":
            if headers.get("X-Api-Key") == SECRET:
                status, kind, body = 200, "application/json", '{"p": "7.25"}'
            else:
                status, kind, body = 401, "application/json", echo(headers)
        elif path == "/echo-500":
            status, kind, body = 500, "application/json", echo(headers)
        elif path == "/echo-200":
            # The secret stands where the price should be, and next to a missing path.
            status, kind, body = 200, "application/json", json.dumps({"p": headers, "q": SECRET})
        else:
            status, kind, body = ANSWERS.get(path, (404, "text/plain", "not found"))
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (the timeout case)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with serving(Upstream()) as server:
        yield server


@pytest.fixture(scope="module")
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(allow=("127.0.0.1",), timeout=10.0) as guarded:
        yield guarded


def source(
    upstream: Upstream, path: str, json_path: str = "$.p", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A generic source as ``neosl.pricefeeds.definitions`` stores it."""
    return {
        "name": "http:local",
        "url": upstream.url(path),
        "json_path": json_path,
        "headers": headers or {},
    }


def failure(
    fetcher: Fetcher, src: dict[str, Any], secrets: dict[str, str] | None = None
) -> SourceError:
    with pytest.raises(SourceError) as caught:
        ask(fetcher, src, "NEO/USD", secrets or {})
    # Nor in what a log line shows of it, with the exceptions it was raised from.
    logged = "".join(traceback.format_exception(caught.value))
    assert SECRET not in logged
    assert SECRET not in caught.value.message
    return caught.value


def test_reads_a_number_exactly(upstream: Upstream, fetcher: Fetcher) -> None:
    quote = ask(fetcher, source(upstream, "/number", "$.data.price"), "NEO/USD", {})
    assert quote.price == Decimal("0.12345678901234567890123")
    assert quote.source == "http:local"
    assert quote.pair == "NEO/USD"
    assert quote.latency_ms >= 0


def test_reads_a_numeric_string(upstream: Upstream, fetcher: Fetcher) -> None:
    quote = ask(fetcher, source(upstream, "/string", "$.result[0].last"), "GAS/EUR", {})
    assert (quote.price, quote.pair) == (Decimal("12.5"), "GAS/EUR")
    assert ask(fetcher, source(upstream, "/bare", "$"), "NEO/USD", {}).price == 42


def test_sends_headers_with_secrets_filled_in(upstream: Upstream, fetcher: Fetcher) -> None:
    src = source(
        upstream,
        "/keyed",
        headers={"X-Api-Key": "{{secrets.API_KEY}}", "X-Note": "plain {{secrets.ID}}!"},
    )
    quote = ask(fetcher, src, "NEO/USD", {"API_KEY": SECRET, "ID": "42", "UNUSED": "x"})
    assert quote.price == Decimal("7.25")
    got = upstream.seen["/keyed"]
    assert got["X-Api-Key"] == SECRET
    assert got["X-Note"] == "plain 42!"
    assert got["Accept"] == "application/json"
    assert got["User-Agent"] == "neosl-pricefeed"
    # The quote carries nothing of the request.
    assert SECRET not in repr(quote)


def test_a_missing_secret_sends_nothing(upstream: Upstream, fetcher: Fetcher) -> None:
    src = source(upstream, "/never-asked", headers={"X-Api-Key": "{{secrets.API_KEY}}"})
    error = failure(fetcher, src, {"OTHER": SECRET})
    assert error.kind == BAD_RESPONSE
    assert "secret API_KEY is not set" in error.message
    assert "/never-asked" not in upstream.seen


def test_a_secret_a_header_cannot_carry(upstream: Upstream, fetcher: Fetcher) -> None:
    src = source(upstream, "/never-asked-2", headers={"X-Api-Key": "{{secrets.API_KEY}}"})
    error = failure(fetcher, src, {"API_KEY": SECRET + "\r\nX-Injected: 1"})
    assert error.kind == BAD_RESPONSE
    assert "secret API_KEY cannot be sent" in error.message
    assert "/never-asked-2" not in upstream.seen


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/status/429", RATE_LIMITED),
        ("/status/503", MAINTENANCE),
        ("/status/404", UNKNOWN_SYMBOL),
        ("/status/500", HTTP_ERROR),
        ("/status/400", HTTP_ERROR),
        ("/echo-500", HTTP_ERROR),
        ("/keyed", HTTP_ERROR),  # 401 for a wrong key, echoing what it got
    ],
)
def test_error_statuses(upstream: Upstream, fetcher: Fetcher, path: str, kind: str) -> None:
    headers = {"X-Api-Key": "{{secrets.WRONG}}", "X-Other": "{{secrets.KEY}}"}
    error = failure(
        fetcher, source(upstream, path, headers=headers), {"WRONG": "nope", "KEY": SECRET}
    )
    assert error.kind == kind
    status = path.rsplit("/", 1)[-1]
    assert error.message.startswith("http:local ")
    if status.isdigit():
        assert f"HTTP {status}" in error.message
    assert "you_sent" not in error.message


@pytest.mark.parametrize(
    ("path", "json_path", "words"),
    [
        ("/html", "$.p", "not JSON"),
        ("/deep", "$.p", "not JSON"),
        ("/large", "$.p", "too large"),
        ("/string", "$.result[0].bid", 'no price at $.result[0].bid: $.result[0] has no key "bid"'),
        ("/string", "$.result[3].last", "no price at $.result[3].last: $.result has no item 3"),
        ("/huge", "$.p", "implausible"),
        ("/huge-int", "$.p", "implausible"),
        ("/negative", "$.p", "not positive"),
        ("/zero", "$.p", "not positive"),
        ("/nan", "$.p", "not finite"),
        ("/infinity", "$.p", "not finite"),
        ("/words", "$.p", "not a number"),
        ("/bool", "$.p", "not a number"),
        ("/null", "$.p", "not a number"),
        ("/nested", "$.p", "not a number"),
        ("/echo-200", "$.p", "not a number"),
        ("/echo-200", "$.q", "not a number"),
        ("/echo-200", "$.p.missing", 'no key "missing"'),
    ],
)
def test_answers_without_a_plausible_price(
    upstream: Upstream, fetcher: Fetcher, path: str, json_path: str, words: str
) -> None:
    src = source(upstream, path, json_path, headers={"X-Api-Key": "{{secrets.API_KEY}}"})
    error = failure(fetcher, src, {"API_KEY": SECRET})
    assert error.kind == BAD_RESPONSE
    assert words in error.message


def test_timeout(upstream: Upstream) -> None:
    with Fetcher(allow=("127.0.0.1",), timeout=SHORT_TIMEOUT) as impatient:
        error = failure(impatient, source(upstream, "/slow"))
    assert error.kind == TIMEOUT


def test_the_ssrf_guard_refuses_loopback_without_the_allowlist(upstream: Upstream) -> None:
    src = source(upstream, "/guarded", headers={"X-Api-Key": "{{secrets.API_KEY}}"})
    with Fetcher(timeout=10.0) as guarded:
        error = failure(guarded, src, {"API_KEY": SECRET})
    assert error.kind == UNREACHABLE
    assert "not allowed" in error.message
    assert "/guarded" not in upstream.seen


def test_a_closed_port_is_unreachable(fetcher: Fetcher) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as closed:
        port = closed.server_address[1]
    src = {**GOOD, "url": f"http://127.0.0.1:{port}/p", "name": "http:closed", "headers": {}}
    assert failure(fetcher, src).kind == UNREACHABLE


@pytest.mark.parametrize(
    ("deviation", "stored"),
    [
        (Decimal("0.5"), Decimal("0.50")),
        (Decimal("0.005"), Decimal("0.01")),
        (Decimal("1e-9"), None),
    ],
)
def test_a_deviation_is_checked_as_it_is_stored(
    db: Session, offline: Settings, deviation: Decimal, stored: Decimal | None
) -> None:
    """The column keeps two decimals: what rounds to 0.00 is refused, not stored as 0."""
    fields = {
        "asset_pair": "BTC/USD",
        "frequency": 60,
        "sources": [{"name": "coinbase"}],
        "aggregation": "median",
        "deviation": deviation,
        "heartbeat": None,
        "min_sources": 1,
        "target": None,
    }
    if stored is None:
        with pytest.raises(InvalidInput) as caught:
            definitions.validated(db, offline, fields)
        assert "deviation" in (caught.value.details or {})
    else:
        assert definitions.validated(db, offline, fields)["deviation"] == stored
