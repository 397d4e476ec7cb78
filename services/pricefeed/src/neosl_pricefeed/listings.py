"""Each exchange source's market list, fetched from its documented endpoint and stored, so
that feeds can name any pair an exchange lists (``neosl.pricefeeds.catalog.routes``).

The pricefeed clock queues ``REFRESH_LISTING`` for a source whose list is due (``due``: its
``checked_at`` older than ``NSL_PRICE_LISTING_REFRESH_SECONDS``, moved on in the same
statement, so any number of clock replicas queue it once); the worker runs ``refresh``. A
list replaces the stored one in one transaction: a reader sees the old list or the new one,
never half. A failed fetch keeps the stored list (an exchange that is down for a while
still lists what it listed) and records why; it is tried again after ``RETRY_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import logging

import httpx
from sqlalchemy import delete, insert, text, update
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.models import SourceListing, SourceMarket
from neosl_pricefeed.sources import REGISTRY
from neosl_pricefeed.sources.base import Market, SourceError, fetch_listing

log = logging.getLogger(__name__)

# The most markets a source's list may hold: the largest exchanges list a few thousand. A
# list beyond it is refused whole (the stored one stays) rather than cut.
MAX_MARKETS = 20_000
# A failed fetch is tried again this soon, not a whole period later.
RETRY_SECONDS = 60
# A list is a large answer: it gets longer than a ticker's timeout.
LISTING_TIMEOUT_FACTOR = 10
# The first schedule of a source never asked: due at once.
_NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_KNOWN = text(
    """
INSERT INTO source_listings (source, checked_at)
SELECT unnest(CAST(:names AS text[])), :checked_at
ON CONFLICT (source) DO NOTHING
"""
)
_DUE = text(
    """
UPDATE source_listings SET checked_at = :now
WHERE source = ANY(:names) AND checked_at <= :now - make_interval(secs => :period)
RETURNING source
"""
)


def _record(session: Session, names: list[str], checked_at: dt.datetime) -> None:
    """A status row for each of ``names`` that has none, last checked at ``checked_at``."""
    session.execute(_KNOWN, {"names": names, "checked_at": checked_at})


def due(session: Session, settings: Settings, now: dt.datetime) -> list[str]:
    """The sources whose list is due (a source never asked is due at once), their next
    check moved a period on; commits."""
    names = list(REGISTRY)
    _record(session, names, _NEVER)
    params = {"names": names, "now": now, "period": settings.price_listing_refresh_seconds}
    due_now = list(session.scalars(_DUE, params))
    session.commit()
    return sorted(due_now)


def store(session: Session, name: str, markets: list[Market], now: dt.datetime) -> None:
    """Replace ``name``'s stored list with ``markets`` (the first of any repeated market
    wins); commits."""
    unique: dict[tuple[str, str], str] = {}
    for market in markets:
        unique.setdefault((market.base, market.quote), market.symbol)
    session.execute(delete(SourceMarket).where(SourceMarket.source == name))
    if unique:
        session.execute(
            insert(SourceMarket),
            [
                {"source": name, "base": base, "quote": quote, "symbol": symbol}
                for (base, quote), symbol in unique.items()
            ],
        )
    session.execute(
        update(SourceListing)
        .where(SourceListing.source == name)
        .values(listed_at=now, markets=len(unique), error=None)
    )
    session.commit()


def record_failure(
    session: Session, settings: Settings, name: str, error: str, now: dt.datetime
) -> None:
    """Keep the stored list, say why the fetch failed, and try again in ``RETRY_SECONDS``;
    commits."""
    retry_at = now - dt.timedelta(seconds=settings.price_listing_refresh_seconds - RETRY_SECONDS)
    session.execute(
        update(SourceListing)
        .where(SourceListing.source == name)
        .values(error=error, checked_at=retry_at)
    )
    session.commit()


def refresh(session: Session, settings: Settings, client: httpx.Client, name: str) -> str:
    """Fetch ``name``'s market list and store it; commits. Returns what came of it.

    The source's row exists (``due`` made it) or is made here, so a refresh can be asked
    for before any clock ran (the dev stack, tests).
    """
    source = REGISTRY.get(name)
    if source is None:
        return f"unknown source {name!r}"
    _record(session, [name], dt.datetime.now(dt.UTC))
    timeout = settings.price_source_timeout_seconds * LISTING_TIMEOUT_FACTOR
    try:
        markets = fetch_listing(client, source, settings.price_source_url(name), timeout)
    except SourceError as exc:
        log.warning("market list of %s: %s", name, exc.message)
        record_failure(session, settings, name, exc.message, dt.datetime.now(dt.UTC))
        return f"failed: {exc.message}"
    if len(markets) > MAX_MARKETS:
        error = f"{source.title} lists {len(markets)} markets, more than {MAX_MARKETS} are kept"
        log.warning("market list of %s: %s", name, error)
        record_failure(session, settings, name, error, dt.datetime.now(dt.UTC))
        return f"failed: {error}"
    store(session, name, markets, dt.datetime.now(dt.UTC))
    return f"{len(markets)} markets"
