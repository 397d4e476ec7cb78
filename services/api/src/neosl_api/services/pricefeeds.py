"""Price feeds: change (validated by ``neosl.pricefeeds.definitions``, which also creates
them), pause and resume, and read their history: prices, OHLC buckets, rounds, the latest
price.

Each round is charged to the feed's owner before its sources are asked
(``neosl.pricefeeds.billing``): creating or resuming a feed needs a default account that
covers one round.

Public feeds (created by an operator with ``neosl feeds create --public``) can be read by
every tenant and named by their price triggers; only their owner changes them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from redis import Redis
from sqlalchemy import Select, inspect, or_, select, text
from sqlalchemy.orm import Session, selectinload

from neosl.config import Settings
from neosl.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PaymentRequired,
    RateLimited,
    Unauthorized,
)
from neosl.gas import ledger
from neosl.models import NeoAction, PriceData, PriceFeed, PriceRound
from neosl.models.pricefeeds import PAUSED_BY_OWNER
from neosl.pricefeeds import billing, catalog, definitions, reports
from neosl_api.pagination import Page, paginate
from neosl_api.services import ratelimit
from neosl_api.tenancy import id_limit

# OHLC bucket widths.
INTERVALS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86_400}
# OHLC answers at most this many buckets (narrow the time range for more).
MAX_BUCKETS = 1000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _readable(user_id: int) -> Any:
    return or_(PriceFeed.user_id == user_id, PriceFeed.public)


def list_feeds(
    session: Session, user_id: int, pair: str | None, limit: int, cursor: str | None
) -> Page[PriceFeed]:
    """The tenant's feeds and the public ones, newest first."""
    stmt: Select[PriceFeed] = select(PriceFeed).where(_readable(user_id))
    if pair is not None:
        stmt = stmt.where(PriceFeed.asset_pair == definitions.normal_pair(pair))
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
    stored: list[dict[str, Any]] = list(feed.sources)
    current: dict[str, Any] = {
        "asset_pair": feed.asset_pair,
        "frequency": feed.frequency,
        "sources": stored,
        "aggregation": feed.aggregation,
        "deviation": feed.deviation,
        "heartbeat": feed.heartbeat,
        "min_sources": feed.min_sources,
        "target": feed.target,
        "usdt_as_usd": feed.usdt_as_usd,
    }
    if "aggregation" in changes and "sources" not in changes:
        # Weights come and go with the aggregation: the sources stay.
        current["sources"] = [{k: v for k, v in s.items() if k != "weight"} for s in stored]
    fields = definitions.validated(session, settings, {**current, **changes})
    for name, value in fields.items():
        setattr(feed, name, value)
    session.commit()
    return feed


def describe_sources(
    session: Session, pair: str | None, usdt_as_usd: bool
) -> list[dict[str, object]]:
    """Every source and its market list's status; with ``pair``, the sources that price it
    (from the stored lists: no exchange is asked).

    Raises:
        InvalidInput: ``pair`` is not BASE/QUOTE.
    """
    status = catalog.listings(session)
    if pair is None:
        return catalog.describe(status)
    try:
        pair = definitions.normal_pair(pair)
    except InvalidInput:
        raise InvalidInput("pair: BASE/QUOTE such as NEO/USD", {"pair": ["BASE/QUOTE"]}) from None
    served = {r.source: r for r in catalog.serving(session, pair, usdt_as_usd)}
    return catalog.describe(status, served)


def delete_feed(session: Session, user_id: int, feed_id: int) -> None:
    """Delete a feed with its prices and rounds (price triggers on it stop evaluating)."""
    session.delete(_own(session, user_id, feed_id))
    session.commit()


def set_status(
    session: Session, settings: Settings, user_id: int, feed_id: int, status: str
) -> PriceFeed:
    """Pause or resume; a resumed feed's next round is due at once.

    A feed its owner paused stays paused until the owner resumes it, also one the service
    had paused for want of funds (the pricefeed clock resumes only those). Resuming needs
    a default account that covers one round of the feed.

    Raises:
        NotFound, Forbidden: as ``_own``.
        PaymentRequired: resuming, and the default account cannot pay for a round.
    """
    feed = _own(session, user_id, feed_id)
    if status == "paused":
        feed.status, feed.paused_reason = "paused", PAUSED_BY_OWNER
    elif feed.status != "active":
        billing.require_round_funds(
            session, settings, user_id, len(feed.sources), "resume this feed"
        )
        feed.status, feed.paused_reason = "active", None
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
        message = f"one of {', '.join(INTERVALS)}"
        raise InvalidInput(f"interval: {message}", {"interval": [message]})
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
    stmt = (
        select(PriceRound)
        .where(PriceRound.feed_id == feed_id)
        .options(selectinload(PriceRound.action))
    )
    return paginate(session, stmt, PriceRound.id, limit=limit, cursor=cursor)


def _published(session: Session, feed_id: int) -> dict[str, Any] | None:
    """The feed's last round on chain (its publication HALTed)."""
    row = session.execute(
        select(PriceRound, NeoAction)
        .join(NeoAction, NeoAction.price_round_id == PriceRound.id)
        .where(PriceRound.feed_id == feed_id, NeoAction.status == "confirmed")
        .order_by(PriceRound.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    published, action = row
    return {
        "round_id": published.id,
        "price": published.price,
        "timestamp": published.finished_at,
        "contract": action.contract,
        "key": f"feed:{feed_id}" if action.as_publisher else None,
        "tx_hash": action.tx_hash,
        "block_index": action.block_index,
    }


def feed_detail(session: Session, user_id: int, feed_id: int) -> dict[str, Any]:
    """One feed (as ``get_feed``) with its publishing: the last round on chain and the
    newest round that was due, with what came of it (the reason when it was not published).
    """
    feed = get_feed(session, user_id, feed_id)
    attempt = session.scalars(
        select(PriceRound)
        .where(
            PriceRound.feed_id == feed_id,
            PriceRound.publication.in_(("queued", "skipped", "unpaid")),
        )
        .order_by(PriceRound.id.desc())
        .limit(1)
        .options(selectinload(PriceRound.action))
    ).one_or_none()
    columns = {a.key: getattr(feed, a.key) for a in inspect(PriceFeed).column_attrs}
    return {
        **columns,
        "publishing": {"last_published": _published(session, feed_id), "last_attempt": attempt},
    }


def latest(session: Session, user_id: int, feed_id: int) -> dict[str, Any]:
    """The newest price, the newest round (which may have failed) and the last round
    published on chain."""
    get_feed(session, user_id, feed_id)
    price = session.scalars(
        select(PriceData).where(PriceData.feed_id == feed_id).order_by(PriceData.id.desc()).limit(1)
    ).one_or_none()
    last_round = session.scalars(
        select(PriceRound)
        .where(PriceRound.feed_id == feed_id)
        .order_by(PriceRound.id.desc())
        .limit(1)
        .options(selectinload(PriceRound.action))
    ).one_or_none()
    return {
        "feed_id": feed_id,
        "price": price,
        "round": last_round,
        "published": _published(session, feed_id),
    }


# Reads of public feeds' reports without a key, per client address and minute.
ANONYMOUS_REPORTS_PER_MINUTE = 120


def signed_report(
    session: Session,
    settings: Settings,
    redis: Redis,
    user_id: int | None,
    feed_id: int,
    client: str,
) -> dict[str, Any]:
    """The feed's latest signed report (``neosl.pricefeeds.reports``), with its signature and
    the key that signed it; commits.

    A tenant reads its own feeds' and the public ones', paying ``NSL_PRICEFEED_REPORT_FEE``
    per read before anything is answered; without a key (``user_id`` None) only public feeds'
    reports are read, free, at most ``ANONYMOUS_REPORTS_PER_MINUTE`` per client address.

    Raises:
        Unauthorized: no key, and the feed is not public (or does not exist).
        NotFound: not a feed the tenant may read, or no round of it is signed yet.
        PaymentRequired: the tenant's default account cannot pay for the read.
        RateLimited: too many reads without a key from this address.
    """
    readable = PriceFeed.public if user_id is None else _readable(user_id)
    feed = session.scalar(select(PriceFeed).where(PriceFeed.id == feed_id, readable))
    if feed is None:
        if user_id is None:
            raise Unauthorized("a key is needed to read this feed's reports")
        raise NotFound(f"price feed {feed_id} not found")
    if user_id is None:
        wait = ratelimit.hit(redis, f"nsl:reports:{client}", ANONYMOUS_REPORTS_PER_MINUTE, 60)
        if wait is not None:
            raise RateLimited("too many report reads without a key; use one", wait)
    signed = session.scalars(
        select(PriceRound)
        .where(PriceRound.feed_id == feed_id, PriceRound.report.is_not(None))
        .order_by(PriceRound.id.desc())
        .limit(1)
    ).one_or_none()
    if signed is None or signed.report is None or signed.report_signature is None:
        raise NotFound(f"price feed {feed_id} has no signed report yet")
    if user_id is not None and settings.pricefeed_report_fee > 0:
        paid = ledger.charge(
            session,
            user_id,
            "pricefeed",
            settings.pricefeed_report_fee,
            f"report:{signed.id}:{uuid.uuid4().hex}",
        )
        if not paid.ok:
            raise PaymentRequired(
                f"a signed report costs {settings.pricefeed_report_fee} GAS; "
                "your default gas account cannot pay it"
            )
    session.commit()
    report = reports.Report.from_bytes(signed.report)
    return {
        "feed_id": report.feed_id,
        "pair": report.pair,
        "price": str(report.price),
        "decimals": report.decimals,
        "round_id": report.round_id,
        "timestamp": report.timestamp_ms,
        "sources_used": report.sources_used,
        "report": signed.report.hex(),
        "signature": signed.report_signature.hex(),
        "key_id": signed.report_key_id,
        "public_key": (signed.report_public_key or b"").hex(),
    }
