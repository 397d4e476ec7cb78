"""Price feed definitions: validation of every field (together), and creation (within
``NSL_FEEDS_PER_TENANT``, by an owner who can pay a round: ``billing``).

Shared by the API and the operator's CLI (``neosl feeds create --public``). Errors name the
field (``sources[2]``, ``heartbeat``…).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.db import lock_tenant
from neosl.errors import Conflict, InvalidInput
from neosl.functions import secretbox
from neosl.models import PriceFeed
from neosl.models.pricefeeds import PAUSED_UNFUNDED
from neosl.pricefeeds import billing, catalog, jsonpath
from neosl.triggers.rules import CONTRACT_HASH, PAIR

AGGREGATIONS = ("median", "mean", "trimmed_mean", "weighted")
MAX_FREQUENCY = 86_400
MAX_HEARTBEAT = 7 * 86_400
MAX_SOURCES = 16
MAX_DEVIATION = Decimal(100)
MAX_WEIGHT = Decimal(1000)
DEFAULT_DEVIATION = Decimal("0.5")
# pg_advisory_xact_lock class of a tenant's number of feeds (against NSL_FEEDS_PER_TENANT);
# listed in the API's ``TenantLock`` with every other.
FEEDS_LOCK = 0x7066

# A generic source: a tenant's own URL and where the price is in its JSON answer.
GENERIC_PREFIX = "http:"
MAX_LABEL = 40
MAX_URL_CHARS = 2048
MAX_HEADERS = 16
MAX_HEADER_VALUE = 1024
# ``{{secrets.NAME}}`` in a header value: the worker puts the tenant's secret there on each
# fetch, so the feed stores only the name.
SECRET_REFERENCE = re.compile(r"\{\{secrets\.([^{}]*)\}\}")
_GENERIC_ONLY = frozenset({"url", "json_path", "headers"})
_GENERIC_KEYS = _GENERIC_ONLY | {"name", "weight"}
# A known source: its name and weight; its market and symbol as a stored feed shows them.
_NAMED_KEYS = frozenset({"name", "weight", "market", "symbol"})
_LABEL = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_HOST = re.compile(r"(?=.{1,253}\Z)[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


@dataclass(frozen=True)
class FeedSpec:
    asset_pair: str
    frequency: int
    sources: Any
    aggregation: str = "median"
    deviation: Decimal | None = None
    heartbeat: int | None = None
    min_sources: int = 1
    target: Any = None
    public: bool = False
    usdt_as_usd: bool = False


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", {field: [message]})


def normal_pair(value: object) -> str:
    """``value`` as a pair in upper case.

    Raises:
        InvalidInput: not BASE/QUOTE.
    """
    if not isinstance(value, str) or not PAIR.match(value.upper()):
        raise _bad("asset_pair", "BASE/QUOTE such as NEO/USD")
    return value.upper()


def _weight(value: object, field: str) -> Decimal:
    try:
        weight = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        weight = None
    if weight is None or not weight.is_finite() or not 0 < weight <= MAX_WEIGHT:
        raise _bad(field, f"a number > 0 and ≤ {MAX_WEIGHT}")
    return weight


def _sources(
    session: Session, value: object, pair: str, aggregation: str, usdt_as_usd: bool
) -> list[dict[str, Any]]:
    """The feed's sources, each once: ``{"name", "market", "symbol"}`` for a known source
    that serves ``pair`` (the market it reads and the source's symbol of it, from its stored
    market list: ``catalog.routes``), ``{"name": "http:<label>", "url", "json_path",
    "headers"}`` for a generic one (which serves any pair); each with ``"weight"`` under the
    weighted aggregation. A known source's ``market`` and ``symbol`` given back (a feed's
    stored sources, sent again by an update) are decided again, not taken.

    Raises:
        InvalidInput: naming ``sources``, ``sources[i]`` or the item's field.
    """
    if not isinstance(value, list) or not 0 < len(value) <= MAX_SOURCES:
        raise _bad(
            "sources",
            f"a list of 1-{MAX_SOURCES} source names, {{name, weight}} or "
            "{url, json_path, headers, name, weight}",
        )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    named = [
        item if isinstance(item, str) else item.get("name") if isinstance(item, dict) else None
        for item in value
    ]
    routes = catalog.routes(session, pair, [n for n in named if isinstance(n, str)], usdt_as_usd)
    for i, item in enumerate(value):
        field = f"sources[{i}]"
        source: dict[str, Any]
        if isinstance(item, dict) and not _GENERIC_ONLY.isdisjoint(item):
            source, weight = _generic(item, field), item.get("weight")
            if source["name"] in seen:
                raise _bad(f"{field}.name", f"{source['name']} is listed twice; give each a name")
        else:
            if isinstance(item, str):
                name, weight = item, None
            elif isinstance(item, dict) and set(item) <= _NAMED_KEYS and "name" in item:
                name, weight = item["name"], item.get("weight")
            else:
                raise _bad(field, "a source name, {name, weight} or {url, json_path, ...}")
            if not isinstance(name, str) or name not in catalog.NAMES:
                known = ", ".join(catalog.NAMES)
                raise _bad(field, f"unknown source {str(name)[:40]!r} (known: {known})")
            if name in seen:
                raise _bad(field, f"{name} is listed twice")
            route = routes[name]
            if not isinstance(route, catalog.Route):
                raise _bad(field, route)
            source = route.as_source()
        seen.add(source["name"])
        if aggregation == "weighted":
            if weight is None:
                raise _bad(f"{field}.weight", "required by the weighted aggregation")
            source["weight"] = str(_weight(weight, f"{field}.weight"))
        elif weight is not None:
            raise _bad(f"{field}.weight", "only the weighted aggregation takes weights")
        out.append(source)
    return out


def is_generic(source: dict[str, Any]) -> bool:
    """Whether a normalised source is a tenant's own URL rather than a known source."""
    return "url" in source


def secret_names(source: dict[str, Any]) -> set[str]:
    """The tenant secrets a normalised source's headers reference (none for a known source)."""
    headers: dict[str, str] = source.get("headers") or {}
    return {m.group(1) for value in headers.values() for m in SECRET_REFERENCE.finditer(value)}


def _generic(item: dict[str, Any], field: str) -> dict[str, Any]:
    """A generic source without its weight, normalised.

    Only the URL's syntax is checked here: where it points is checked on every fetch (the
    SSRF guard), since a name can resolve elsewhere later.

    Raises:
        InvalidInput: naming the item's field.
    """
    unknown = sorted(set(item) - _GENERIC_KEYS)
    if unknown:
        raise _bad(
            field,
            f"unknown key {unknown[0][:40]!r} (a generic source takes "
            "url, json_path, headers, name, weight)",
        )
    url = item.get("url")
    host = _host(url, f"{field}.url")
    json_path = item.get("json_path")
    try:
        jsonpath.parse(json_path)
    except ValueError as exc:
        raise _bad(f"{field}.json_path", str(exc)) from None
    label = item.get("name")
    if label is None:
        # The host, as far as a label can spell it (an IPv6 address has colons).
        label = re.sub(r"[^A-Za-z0-9_.-]", "-", host)[:MAX_LABEL]
    elif isinstance(label, str):
        label = label.removeprefix(GENERIC_PREFIX)
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise _bad(f"{field}.name", f"a label of 1-{MAX_LABEL} letters, digits, _ . or -")
    return {
        "name": GENERIC_PREFIX + label,
        "url": url,
        "json_path": json_path,
        "headers": _headers(item.get("headers"), f"{field}.headers"),
    }


def _host(value: object, field: str) -> str:
    """The host of ``value``, if it is an http(s) URL a fetch can send.

    Raises:
        InvalidInput: naming ``field``.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL_CHARS:
        raise _bad(field, f"an http or https URL of up to {MAX_URL_CHARS} characters")
    # The fetcher refuses these too: it reads a URL one way only.
    if any(c <= " " or c in "\x7f\\" for c in value):
        raise _bad(field, "no spaces, control characters or backslashes (percent-encode them)")
    scheme, sep, _ = value.partition("://")
    if scheme.lower() not in ("http", "https") or not sep:
        raise _bad(field, "an http or https URL")
    try:
        url = httpx.URL(value)
        host = url.raw_host.decode("ascii").lower().removesuffix(".")
    except (httpx.InvalidURL, ValueError):  # UnicodeError is a ValueError
        raise _bad(field, "not a valid URL") from None
    if url.userinfo:
        raise _bad(field, "no user:password@ in the URL; send an Authorization header")
    if url.port is not None and not 0 < url.port < 65536:
        raise _bad(field, "a port from 1 to 65535")
    if not host or not (_HOST.fullmatch(host) or _is_address(host)):
        raise _bad(field, "a URL with a valid host")
    return host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _headers(value: object, field: str) -> dict[str, str]:
    """The headers a generic source sends, as given.

    Raises:
        InvalidInput: naming ``field`` or ``field.<header>``.
    """
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        raise _bad(field, f"an object of up to {MAX_HEADERS} header names and string values")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise _bad(field, f"{str(name)[:40]!r} is not an HTTP header name")
        if name.lower() in seen:
            raise _bad(f"{field}.{name}", "listed twice (header names ignore case)")
        seen.add(name.lower())
        out[name] = _header_value(text, f"{field}.{name}")
    return out


def _header_value(value: object, field: str) -> str:
    """Raises InvalidInput naming ``field``."""
    if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
        raise _bad(field, f"a string of up to {MAX_HEADER_VALUE} characters")
    if any((c < " " and c != "\t") or c == "\x7f" for c in value):
        raise _bad(field, "no line breaks or other control characters")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise _bad(field, "Latin-1 characters only (HTTP header values)") from None
    for match in SECRET_REFERENCE.finditer(value):
        if not secretbox.valid_name(match.group(1)):
            raise _bad(field, f"{{{{secrets.NAME}}}} names a secret: {secretbox.NAME_PATTERN}")
    rest = SECRET_REFERENCE.sub("", value)
    if "{{" in rest or "}}" in rest:
        raise _bad(field, "{{ and }} only surround a secret reference: {{secrets.NAME}}")
    return value


def _target(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"contract", "method"}:
        raise _bad("target", "null (the service's PriceFeed contract) or {contract, method}")
    contract, method = value["contract"], value["method"]
    if not isinstance(contract, str) or not CONTRACT_HASH.match(contract.lower()):
        raise _bad("target.contract", "0x followed by 40 hex digits")
    if not isinstance(method, str) or not 0 < len(method) <= 100:
        raise _bad("target.method", "the method's name, 1-100 characters")
    return {"contract": contract.lower(), "method": method}


def validated(session: Session, settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    """Every field of a feed, checked together (heartbeat against frequency, weights
    against the aggregation, min_sources against the sources, the sources against their
    stored market lists and ``usdt_as_usd``).

    Raises:
        InvalidInput: naming the field.
    """
    pair = normal_pair(fields["asset_pair"])
    frequency = fields["frequency"]
    if not settings.pricefeed_min_frequency <= frequency <= MAX_FREQUENCY:
        raise _bad(
            "frequency",
            f"seconds between rounds, {settings.pricefeed_min_frequency}-{MAX_FREQUENCY}",
        )
    aggregation = fields["aggregation"]
    if aggregation not in AGGREGATIONS:
        raise _bad("aggregation", f"one of {', '.join(AGGREGATIONS)}")
    usdt_as_usd = fields.get("usdt_as_usd", False)
    if not isinstance(usdt_as_usd, bool):
        raise _bad("usdt_as_usd", "true or false")
    sources = _sources(session, fields["sources"], pair, aggregation, usdt_as_usd)
    deviation = fields["deviation"] if fields["deviation"] is not None else DEFAULT_DEVIATION
    # The column keeps two decimals: checked as it will be stored (1e-9 would become 0.00).
    deviation = Decimal(deviation).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if not 0 < deviation <= MAX_DEVIATION:
        raise _bad("deviation", "percent, > 0 and ≤ 100")
    heartbeat = fields["heartbeat"] if fields["heartbeat"] is not None else max(3600, frequency)
    if not frequency <= heartbeat <= MAX_HEARTBEAT:
        raise _bad("heartbeat", f"seconds, at least the frequency ({frequency}), ≤ {MAX_HEARTBEAT}")
    min_sources = fields["min_sources"]
    if not 1 <= min_sources <= len(sources):
        raise _bad("min_sources", f"1 to the number of sources ({len(sources)})")
    return {
        "asset_pair": pair,
        "frequency": frequency,
        "sources": sources,
        "aggregation": aggregation,
        "deviation": deviation,
        "heartbeat": heartbeat,
        "min_sources": min_sources,
        "target": _target(fields["target"]),
        "usdt_as_usd": usdt_as_usd,
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lock_feeds(session: Session, user_id: int) -> None:
    """Hold the tenant's feeds lock until the transaction ends: a count-then-insert under it
    cannot interleave with another one of the same tenant's."""
    lock_tenant(session, FEEDS_LOCK, user_id)


def create_feed(session: Session, settings: Settings, user_id: int, spec: FeedSpec) -> PriceFeed:
    """A new feed, active: its first round is due now; commits.

    The owner's default account must cover one of its rounds (``billing``). A public feed
    (an operator's, ``neosl feeds create --public``) whose owner cannot pay yet is created
    paused for want of funds instead: it starts by itself once the owner can pay.

    Raises:
        InvalidInput: naming the field.
        Conflict: the tenant has ``NSL_FEEDS_PER_TENANT`` feeds already.
        PaymentRequired: the owner's default account cannot pay for a round.
    """
    fields = validated(session, settings, spec.__dict__)
    # Held until the commit: concurrent creates count one after the other, never past the cap.
    lock_feeds(session, user_id)
    count = session.scalar(select(func.count()).where(PriceFeed.user_id == user_id)) or 0
    if count >= settings.feeds_per_tenant:
        session.rollback()
        raise Conflict(
            f"you have {count} price feeds, the most allowed (NSL_FEEDS_PER_TENANT); "
            "delete some first"
        )
    status, paused_reason = "active", None
    sources = len(fields["sources"])
    if not billing.can_pay_round(session, settings, user_id, sources):
        if not spec.public:
            session.rollback()
            raise billing.payment_required(settings, sources, "create this feed")
        status, paused_reason = "paused", PAUSED_UNFUNDED
    feed = PriceFeed(
        user_id=user_id,
        status=status,
        paused_reason=paused_reason,
        public=spec.public,
        next_round_at=_now(),
        **fields,
    )
    session.add(feed)
    session.commit()
    return feed
