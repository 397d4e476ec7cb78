"""Price feeds: create and change (validated against the sources' catalog), pause and
resume, and read their history: prices, OHLC buckets, rounds, the latest price.

Public feeds (created by an operator with ``neosl feeds create --public``) can be read by
every tenant and named by their price triggers; only their owner changes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, or_, select, text
from sqlalchemy.orm import Session

from neosl import pricesources
from neosl.config import Settings
from neosl.errors import Forbidden, InvalidInput, NotFound
from neosl.models import PriceData, PriceFeed, PriceRound
from neosl.pagination import Page, paginate
from neosl.tenancy import id_limit
from neosl.triggers import CONTRACT_HASH, PAIR

AGGREGATIONS = ("median", "mean", "trimmed_mean", "weighted")
MAX_FREQUENCY = 86_400
MAX_HEARTBEAT = 7 * 86_400
MAX_SOURCES = 16
MAX_DEVIATION = Decimal(100)
MAX_WEIGHT = Decimal(1000)
# OHLC bucket widths.
INTERVALS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86_400}
# OHLC answers at most this many buckets (narrow the time range for more).
MAX_BUCKETS = 1000


@dataclass(frozen=True)
class FeedSpec:
    asset_pair: str
    frequency: int
    sources: Any
    aggregation: str = "median"
    deviation: Decimal = Decimal("0.5")
    heartbeat: int | None = None
    min_sources: int = 1
    target: Any = None
    public: bool = False


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", {field: [message]})


def _pair(value: object) -> str:
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


def _sources(value: object, pair: str, aggregation: str) -> list[dict[str, str]]:
    """``[{"name", "weight"}]``: known sources, each serving ``pair``, each once.

    Raises:
        InvalidInput: naming ``sources`` or ``sources[i]``.
    """
    if not isinstance(value, list) or not 0 < len(value) <= MAX_SOURCES:
        raise _bad("sources", f"a list of 1-{MAX_SOURCES} source names or {{name, weight}}")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        field = f"sources[{i}]"
        if isinstance(item, str):
            name, weight = item, None
        elif isinstance(item, dict) and set(item) <= {"name", "weight"} and "name" in item:
            name, weight = item["name"], item.get("weight")
        else:
            raise _bad(field, "a source name or {name, weight}")
        if not isinstance(name, str) or name not in pricesources.NAMES:
            known = ", ".join(pricesources.NAMES)
            raise _bad(field, f"unknown source {str(name)[:40]!r} (known: {known})")
        if name in seen:
            raise _bad(field, f"{name} is listed twice")
        seen.add(name)
        if not pricesources.serves(name, pair):
            raise _bad(field, f"{name} does not serve {pair} (GET /v1/price-sources)")
        if aggregation == "weighted":
            if weight is None:
                raise _bad(f"{field}.weight", "required by the weighted aggregation")
            out.append({"name": name, "weight": str(_weight(weight, f"{field}.weight"))})
        else:
            if weight is not None:
                raise _bad(f"{field}.weight", "only the weighted aggregation takes weights")
            out.append({"name": name})
    return out


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


def _validated(settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    """Every field of a feed, checked together (heartbeat against frequency, weights
    against the aggregation, min_sources against the sources).

    Raises:
        InvalidInput: naming the field.
    """
    pair = _pair(fields["asset_pair"])
    frequency = fields["frequency"]
    if not settings.pricefeed_min_frequency <= frequency <= MAX_FREQUENCY:
        raise _bad(
            "frequency",
            f"seconds between rounds, {settings.pricefeed_min_frequency}-{MAX_FREQUENCY}",
        )
    aggregation = fields["aggregation"]
    if aggregation not in AGGREGATIONS:
        raise _bad("aggregation", f"one of {', '.join(AGGREGATIONS)}")
    sources = _sources(fields["sources"], pair, aggregation)
    deviation = fields["deviation"]
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
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_feed(session: Session, settings: Settings, user_id: int, spec: FeedSpec) -> PriceFeed:
    """A new feed, active: its first round is due now.

    Raises:
        InvalidInput: naming the field.
    """
    fields = _validated(settings, spec.__dict__)
    feed = PriceFeed(
        user_id=user_id, status="active", public=spec.public, next_round_at=_now(), **fields
    )
    session.add(feed)
    session.commit()
    return feed


def _readable(user_id: int) -> Any:
    return or_(PriceFeed.user_id == user_id, PriceFeed.public)


def list_feeds(
    session: Session, user_id: int, pair: str | None, limit: int, cursor: str | None
) -> Page[PriceFeed]:
    """The tenant's feeds and the public ones, newest first."""
    stmt: Select[PriceFeed] = select(PriceFeed).where(_readable(user_id))
    if pair is not None:
        stmt = stmt.where(PriceFeed.asset_pair == _pair(pair))
    return paginate(session, stmt, PriceFeed.id, limit=limit, cursor=cursor)


def get_feed(session: Session, user_id: int, feed_id: int) -> PriceFeed:
    """One of the tenant's feeds or a public one.

    Raises:
        NotFound: neither (another tenant's private feed answers the same).
    """
    feed = None
    if 0 < feed_id <= id_limit(PriceFeed.id):
        feed = session.scalars(
            select(PriceFeed).where(PriceFeed.id == feed_id, _readable(user_id))
        ).one_or_none()
    if feed is None:
        raise NotFound(f"price feed {feed_id} not found")
    return feed


def _own(session: Session, user_id: int, feed_id: int) -> PriceFeed:
    """Raises: NotFound, or Forbidden for a public feed of someone else."""
    feed = get_feed(session, user_id, feed_id)
    if feed.user_id != user_id:
        raise Forbidden(f"price feed {feed_id} is a public feed; only its operator changes it")
    return feed


def update_feed(
    session: Session, settings: Settings, user_id: int, feed_id: int, changes: dict[str, Any]
) -> PriceFeed:
    """Change any field; everything is validated again together.

    Raises:
        NotFound, Forbidden: as ``_own``.
        InvalidInput: naming the field.
    """
    feed = _own(session, user_id, feed_id)
    stored: list[dict[str, str]] = list(feed.sources)
    current: dict[str, Any] = {
        "asset_pair": feed.asset_pair,
        "frequency": feed.frequency,
        "sources": stored,
        "aggregation": feed.aggregation,
        "deviation": feed.deviation,
        "heartbeat": feed.heartbeat,
        "min_sources": feed.min_sources,
        "target": feed.target,
    }
    if "aggregation" in changes and "sources" not in changes:
        # Weights come and go with the aggregation: the names stay.
        current["sources"] = [s["name"] for s in stored]
    fields = _validated(settings, {**current, **changes})
    for name, value in fields.items():
        setattr(feed, name, value)
    session.commit()
    return feed


def delete_feed(session: Session, user_id: int, feed_id: int) -> None:
    """Delete a feed with its prices and rounds (price triggers on it stop evaluating)."""
    session.delete(_own(session, user_id, feed_id))
    session.commit()


def set_status(session: Session, user_id: int, feed_id: int, status: str) -> PriceFeed:
    """Pause or resume; a resumed feed's next round is due at once."""
    feed = _own(session, user_id, feed_id)
    if feed.status != status:
        feed.status = status
        if status == "active":
            feed.next_round_at = _now()
    session.commit()
    return feed


def list_prices(
    session: Session,
    user_id: int,
    feed_id: int,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    cursor: str | None,
) -> Page[PriceData]:
    get_feed(session, user_id, feed_id)
    stmt = select(PriceData).where(PriceData.feed_id == feed_id)
    if since is not None:
        stmt = stmt.where(PriceData.timestamp >= since)
    if until is not None:
        stmt = stmt.where(PriceData.timestamp < until)
    return paginate(session, stmt, PriceData.id, limit=limit, cursor=cursor)


_OHLC = text(
    """
SELECT date_bin(make_interval(secs => :width), timestamp, TIMESTAMPTZ '2000-01-01') AS start,
       (array_agg(price ORDER BY timestamp, id))[1] AS open,
       max(price) AS high,
       min(price) AS low,
       (array_agg(price ORDER BY timestamp DESC, id DESC))[1] AS close,
       count(*) AS rounds
FROM price_data
WHERE feed_id = :feed_id AND timestamp >= :since AND timestamp < :until
GROUP BY 1
ORDER BY 1 DESC
LIMIT :limit
"""
)


def ohlc(
    session: Session,
    user_id: int,
    feed_id: int,
    interval: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[dict[str, Any]]:
    """OHLC buckets of ``interval`` (aligned to UTC), newest first, computed in SQL.

    Without ``since`` the range starts ``MAX_BUCKETS`` intervals before ``until`` (default
    now); at most ``MAX_BUCKETS`` buckets are answered.

    Raises:
        NotFound: the feed is not readable.
        InvalidInput: an unknown interval.
    """
    get_feed(session, user_id, feed_id)
    if interval not in INTERVALS:
        raise _bad("interval", f"one of {', '.join(INTERVALS)}")
    width = INTERVALS[interval]
    until = until or _now()
    since = since or until - dt.timedelta(seconds=width * MAX_BUCKETS)
    rows = session.execute(
        _OHLC,
        {"width": width, "feed_id": feed_id, "since": since, "until": until, "limit": MAX_BUCKETS},
    ).all()
    return [
        {
            "start": row.start,
            "open": row.open,
            "high": row.high,
            "low": row.low,
            "close": row.close,
            "rounds": row.rounds,
        }
        for row in rows
    ]


def list_rounds(
    session: Session, user_id: int, feed_id: int, limit: int, cursor: str | None
) -> Page[PriceRound]:
    get_feed(session, user_id, feed_id)
    stmt = select(PriceRound).where(PriceRound.feed_id == feed_id)
    return paginate(session, stmt, PriceRound.id, limit=limit, cursor=cursor)


def latest(session: Session, user_id: int, feed_id: int) -> dict[str, Any]:
    """The newest price and the newest round (which may have failed)."""
    get_feed(session, user_id, feed_id)
    price = session.scalars(
        select(PriceData).where(PriceData.feed_id == feed_id).order_by(PriceData.id.desc()).limit(1)
    ).one_or_none()
    last_round = session.scalars(
        select(PriceRound)
        .where(PriceRound.feed_id == feed_id)
        .order_by(PriceRound.id.desc())
        .limit(1)
    ).one_or_none()
    return {"feed_id": feed_id, "price": price, "round": last_round}
