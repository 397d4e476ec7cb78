"""The interface every market-data source implements, and the one function that calls it.

A source turns a pair into one HTTP GET (``request``) and the answer into a price (``parse``);
``fetch`` sends the request and times it. Keeping the network out of ``parse`` lets a test feed
it any answer, and keeping the answer formats out of ``fetch`` gives every source the same
timeout, size limit and error kinds.
"""

from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from neosl.pricefeeds import catalog

# What went wrong, as the feed reports it per source and round.
UNKNOWN_SYMBOL = "unknown_symbol"  # the source does not list the pair (or stopped trading it)
RATE_LIMITED = "rate_limited"  # the source asks us to slow down
MAINTENANCE = "maintenance"  # the source says it is down or temporarily unavailable
BAD_RESPONSE = "bad_response"  # an answer we cannot read, or a price that cannot be right
HTTP_ERROR = "http_error"  # any other error status or error code
TIMEOUT = "timeout"  # no complete answer within the timeout
UNREACHABLE = "unreachable"  # no connection (refused, DNS, TLS, reset)
KINDS = frozenset(
    {UNKNOWN_SYMBOL, RATE_LIMITED, MAINTENANCE, BAD_RESPONSE, HTTP_ERROR, TIMEOUT, UNREACHABLE}
)

# A price outside this band is a broken answer, not a market: the cheapest pair we would feed
# (a small coin in BTC) is far above the floor and no asset trades near the ceiling.
MIN_PRICE = Decimal("1e-12")
MAX_PRICE = Decimal("1e12")
# A ticker answer is a few hundred bytes; a body this large is something else.
MAX_BODY_BYTES = 256 * 1024
# A market list is larger (Binance's is several megabytes), but bounded too.
MAX_LISTING_BYTES = 64 * 1024 * 1024

# The ``ok`` of ``Source.check_code`` for APIs with no success code: equal to no code.
_NO_SUCCESS_CODE = object()

_PAIR = re.compile(r"^([A-Z0-9]{2,10})/([A-Z0-9]{2,10})$")
_ASSET = re.compile(r"^[A-Z0-9]{2,10}$")
# A venue's market name, as stored with a feed; none of the APIs' names come near this.
MAX_SYMBOL_CHARS = 100
# Error codes are echoed to tenants only in this shape, so an upstream cannot put arbitrary
# text (or markup) into our messages.
_SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:\- ]{1,60}$")


class SourceError(Exception):
    """A source gave no usable price.

    ``kind`` is one of ``KINDS``; the message names the source and never carries the source's
    own error text or our base URL, so it is safe to show tenants.
    """

    def __init__(self, kind: str, message: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown source error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Market:
    """A market a source lists: ``base`` and ``quote`` in our asset codes (upper case; BTC
    where Kraken says XBT), ``symbol`` what the source's ticker request asks for."""

    base: str
    quote: str
    symbol: str


@dataclass(frozen=True)
class Quote:
    source: str
    pair: str
    price: Decimal
    latency_ms: int


def split_pair(pair: str) -> tuple[str, str]:
    """``("NEO", "USD")`` from ``"NEO/USD"``.

    Raises:
        ValueError: not two upper-case asset codes joined by "/".
    """
    match = _PAIR.match(pair)
    if match is None:
        raise ValueError(f"a pair is BASE/QUOTE in upper case, e.g. NEO/USD, not {pair!r}")
    return match.group(1), match.group(2)


def listed(base: object, quote: object, symbol: object) -> Market | None:
    """A market of a list, its asset codes in upper case; None when either code is one a
    pair cannot name (``[A-Z0-9]{2,10}``) or an entry is not text, so lists may hold anything
    else and those entries are skipped, not fatal."""
    if not (isinstance(base, str) and isinstance(quote, str) and isinstance(symbol, str)):
        return None
    base, quote = base.upper(), quote.upper()
    if not (_ASSET.match(base) and _ASSET.match(quote)) or base == quote or not symbol:
        return None
    if len(symbol) > MAX_SYMBOL_CHARS:
        return None
    return Market(base, quote, symbol)


def open_markets(
    rows: list[object],
    base: str,
    quote: str,
    symbol: str,
    is_open: Callable[[dict[str, Any]], bool],
) -> list[Market]:
    """The markets of a list of row objects (``base``, ``quote`` and ``symbol`` name their
    fields) whose ``is_open`` holds, each once, in order. Rows that are not objects, or whose
    codes ``listed`` refuses, are skipped."""
    return list(
        dict.fromkeys(
            market
            for row in rows
            if isinstance(row, dict) and is_open(row)
            if (market := listed(row.get(base), row.get(quote), row.get(symbol)))
        )
    )


def join(base_url: str, path: str) -> str:
    """``path`` under ``base_url``, which may itself have a path (a proxy in front of an API)."""
    return base_url.rstrip("/") + path


def safe_code(value: object) -> str:
    """An upstream error code as we may echo it, or "?" when it does not look like one."""
    text = str(value)
    return text if _SAFE_CODE.match(text) else "?"


def load_json(title: str, status_code: int, body: bytes) -> object:
    """The decoded body, with numbers that have a fraction or exponent as exact ``Decimal``.

    Raises:
        SourceError: the body is not JSON: ``rate_limited``/``maintenance``/``http_error``
            when the status explains it (a proxy's HTML error page), else ``bad_response``.
    """
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, UnicodeDecodeError):
        check_status(title, status_code)
        raise SourceError(BAD_RESPONSE, f"{title} answered something that is not JSON") from None


def check_status(title: str, status_code: int) -> None:
    """Nothing for a 2xx status; the error it stands for otherwise.

    Called after a source's own error codes were read, since most sources explain an error
    better in the body than in the status.

    Raises:
        SourceError: ``rate_limited`` for 429, ``maintenance`` for 503, ``http_error`` for any
            other status outside 2xx.
    """
    if 200 <= status_code < 300:
        return
    if status_code == 429:
        raise SourceError(RATE_LIMITED, f"{title} is rate limiting us (HTTP 429)")
    if status_code == 503:
        raise SourceError(MAINTENANCE, f"{title} is temporarily unavailable (HTTP 503)")
    raise SourceError(HTTP_ERROR, f"{title} answered HTTP {status_code}")


def to_price(title: str, value: object) -> Decimal:
    """A price from a JSON string or number, exactly as the source wrote it.

    Raises:
        SourceError: ``bad_response``: not a number (a float never gets here: ``load_json``
            reads fractions as ``Decimal``), not finite, not positive, or outside
            ``MIN_PRICE``..``MAX_PRICE``.
    """
    if isinstance(value, Decimal):
        price = value
    elif isinstance(value, int) and not isinstance(value, bool):
        price = Decimal(value)
    elif isinstance(value, str) and value.strip() == value and value:
        try:
            price = Decimal(value)
        except InvalidOperation:
            raise SourceError(BAD_RESPONSE, f"{title} sent a price that is not a number") from None
    else:
        raise SourceError(BAD_RESPONSE, f"{title} sent a price that is not a number")
    if not price.is_finite():
        raise SourceError(BAD_RESPONSE, f"{title} sent a price that is not finite")
    if price <= 0:
        raise SourceError(BAD_RESPONSE, f"{title} sent a price that is not positive")
    if not MIN_PRICE <= price <= MAX_PRICE:
        raise SourceError(BAD_RESPONSE, f"{title} sent an implausible price")
    return price


class Source(ABC):
    """One market-data API.

    A source serves a pair when both assets are in its ``bases`` and ``quotes``. That is a
    routing rule, not a listing: a pair the API does not list (or delisted) comes back as
    ``unknown_symbol``. ``quote_aliases`` names the market a quote is priced in on an
    exchange that has none for it, e.g. ``{"USD": "USDT"}``.
    """

    name: ClassVar[str]
    title: ClassVar[str]

    # What a source serves is the shared catalog's (the API validates feeds against it).
    @property
    def bases(self) -> frozenset[str]:
        return catalog.CATALOG[self.name].bases

    @property
    def quotes(self) -> frozenset[str]:
        return frozenset(catalog.CATALOG[self.name].quotes)

    @property
    def quote_aliases(self) -> Mapping[str, str]:
        quotes = catalog.CATALOG[self.name].quotes
        return {ours: theirs for ours, theirs in quotes.items() if ours != theirs}

    def serves(self, pair: str) -> bool:
        try:
            base, quote = split_pair(pair)
        except ValueError:
            return False
        return base != quote and base in self.bases and quote in self.quotes

    def market(self, pair: str) -> tuple[str, str]:
        """The base and quote asset this source is asked for, after ``quote_aliases``.

        Raises:
            SourceError: ``unknown_symbol``: the source does not serve the pair.
        """
        if not self.serves(pair):
            shown = pair if _PAIR.match(pair) else "that pair"
            raise SourceError(UNKNOWN_SYMBOL, f"{self.title} does not serve {shown}")
        base, quote = split_pair(pair)
        return base, self.quote_aliases.get(quote, quote)

    @abstractmethod
    def symbol(self, pair: str) -> str:
        """This API's name for the pair, e.g. "NEOUSDT".

        Raises:
            SourceError: ``unknown_symbol``: the source does not serve the pair.
        """

    @abstractmethod
    def request(self, symbol: str, base_url: str) -> tuple[str, dict[str, str]]:
        """The URL and query parameters of the GET that asks for ``symbol``'s price (the
        source's own name of a market: ``symbol(pair)``, or a listed ``Market.symbol``)."""

    @abstractmethod
    def parse(self, symbol: str, status_code: int, body: bytes) -> Decimal:
        """The price in an answer to ``request(symbol, …)``, exactly as the source wrote it.

        Raises:
            SourceError: the answer is an error (its ``kind`` says which) or has no
                plausible price (``bad_response``).
        """

    @abstractmethod
    def listing_request(self, base_url: str) -> tuple[str, dict[str, str]]:
        """The URL and query parameters of the GET of the source's documented market list
        (its first page, for a paged list)."""

    # A paged market list: how many pages are asked for at most.
    listing_pages: ClassVar[int] = 1

    def listing_page(self, base_url: str, page: int) -> tuple[str, dict[str, str]]:
        """The GET of page ``page`` (from 2) of a paged market list."""
        raise NotImplementedError(f"{self.title}'s market list has one page")

    def listing_complete(self, body: bytes) -> bool:
        """Whether an answer holds the rest of the list: always, unless the list is paged."""
        return True

    @abstractmethod
    def parse_listing(self, status_code: int, body: bytes) -> list[Market]:
        """The markets open for trading in an answer to ``listing_request``, each once.

        Raises:
            SourceError: the answer is an error or not a market list.
        """

    def error(self, kind: str, what: str) -> SourceError:
        return SourceError(kind, f"{self.title} {what}")

    def check_code(
        self,
        status_code: int,
        code: object,
        errors: Mapping[Any, tuple[str, str]],
        *,
        ok: object = _NO_SUCCESS_CODE,
        called: str = "error",
    ) -> None:
        """Raise for the error code an answer carries; return for ``ok`` with a good status.

        A code in ``errors`` (an int or str code → ``(kind, what)``) raises as its kind, whatever
        the HTTP status; else a failing status raises as ``check_status`` does; else any code but
        ``ok`` is an ``http_error`` (the code shown through ``safe_code``, named ``called``).
        Without ``ok``, every code is an error (for APIs that send a code only with errors).
        """
        known = errors.get(code) if isinstance(code, int | str) else None
        if known is not None:
            kind, what = known
            raise self.error(kind, what)
        check_status(self.title, status_code)
        if code != ok:
            raise self.error(HTTP_ERROR, f"answered {called} {safe_code(code)}")

    def describe(self) -> dict[str, object]:
        """What the source serves, for listing it to tenants."""
        return {
            "name": self.name,
            "title": self.title,
            "bases": sorted(self.bases),
            "quotes": sorted(self.quotes),
            "quote_aliases": dict(self.quote_aliases),
            "example": {"pair": self._example(), "symbol": self.symbol(self._example())},
        }

    def _example(self) -> str:
        base = "NEO" if "NEO" in self.bases else sorted(self.bases)[0]
        quote = "USD" if "USD" in self.quotes else sorted(self.quotes)[0]
        return f"{base}/{quote}"


def new_client() -> httpx.Client:
    """The HTTP client a price feed round shares across its sources (one connection pool)."""
    return httpx.Client(
        headers={"Accept": "application/json", "User-Agent": "neosl-pricefeed"},
        follow_redirects=False,
    )


def fetch(
    client: httpx.Client,
    source: Source,
    pair: str,
    base_url: str,
    timeout: float,
    symbol: str | None = None,
) -> Quote:
    """Ask one source for one pair's price: the market ``symbol`` (as listed when the feed
    was defined), or the one the source's naming rule gives for ``pair``.

    ``timeout`` bounds the whole exchange, not each read, so a source that trickles its answer
    cannot hold a round open.

    Raises:
        SourceError: ``unknown_symbol`` for a pair the source does not serve (nothing is
            sent), ``timeout``, ``unreachable``, ``bad_response`` for an answer larger than
            ``MAX_BODY_BYTES``, or whatever ``source.parse`` raises.
    """
    if symbol is None:
        symbol = source.symbol(pair)
    url, params = source.request(symbol, base_url)
    started = time.monotonic()
    status_code, body = _get(client, source, url, params, timeout, MAX_BODY_BYTES, "a ticker")
    latency_ms = round((time.monotonic() - started) * 1000)
    price = source.parse(symbol, status_code, body)
    return Quote(source=source.name, pair=pair, price=price, latency_ms=latency_ms)


def fetch_listing(
    client: httpx.Client, source: Source, base_url: str, timeout: float
) -> list[Market]:
    """The markets a source lists now: every page of a paged list, up to
    ``source.listing_pages``, in order (earlier pages first).

    Raises:
        SourceError: as ``fetch``, with ``MAX_LISTING_BYTES`` as the size bound.
    """
    url, params = source.listing_request(base_url)
    markets: list[Market] = []
    for page in range(1, source.listing_pages + 1):
        if page > 1:
            url, params = source.listing_page(base_url, page)
        status_code, body = _get(
            client, source, url, params, timeout, MAX_LISTING_BYTES, "a market list"
        )
        markets += source.parse_listing(status_code, body)
        if source.listing_complete(body):
            break
    return markets


def _get(
    client: httpx.Client,
    source: Source,
    url: str,
    params: dict[str, str],
    timeout: float,
    limit: int,
    what: str,
) -> tuple[int, bytes]:
    """The status and body of one GET, read within ``timeout`` in all and ``limit`` bytes.

    Raises:
        SourceError: ``timeout``, ``unreachable`` or ``bad_response``.
    """
    deadline = time.monotonic() + timeout
    try:
        with client.stream("GET", url, params=params, timeout=timeout) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise source.error(BAD_RESPONSE, f"sent an answer too large to be {what}")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("deadline passed while reading")
            return response.status_code, bytes(body)
    except httpx.TimeoutException:
        raise source.error(TIMEOUT, f"did not answer within {timeout:g} s") from None
    except httpx.TransportError:
        raise source.error(UNREACHABLE, "could not be reached") from None
    except httpx.DecodingError:
        raise source.error(BAD_RESPONSE, "sent an answer that could not be decoded") from None
