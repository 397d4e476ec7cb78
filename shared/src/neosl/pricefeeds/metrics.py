"""Price feeds' state for Prometheus (the API and the pricefeed service export it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl.metrics import ScrapeTimeCollector
from neosl.models import NeoAction, PriceFeed, PriceRound, SourceListing

log = logging.getLogger(__name__)


# A feed whose newest priced round is older than this many periods is stale.
STALE_PERIODS = 3


class PriceFeedCollector(ScrapeTimeCollector):
    """Price feeds by status, the active ones gone stale, publications in flight, and each
    source's stored market list (its size, its age, whether the last fetch failed).

    Read at scrape time from indexed queries: a feed's newest priced round (rounds by feed
    and id), the open actions (the relay's partial index), one row per source.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Any]:
        newest_priced = (
            select(PriceRound.finished_at)
            .where(PriceRound.feed_id == PriceFeed.id, PriceRound.status == "priced")
            .order_by(PriceRound.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        period = func.make_interval(0, 0, 0, 0, 0, 0, PriceFeed.frequency * STALE_PERIODS)
        since = func.coalesce(newest_priced, PriceFeed.created_at)
        try:
            with self.session_factory() as session:
                by_status = dict(
                    session.execute(
                        select(PriceFeed.status, func.count()).group_by(PriceFeed.status)
                    ).all()
                )
                stale = session.scalar(
                    select(func.count()).where(
                        PriceFeed.status == "active", since < func.now() - period
                    )
                )
                in_flight = dict(
                    session.execute(
                        select(NeoAction.status, func.count())
                        .where(
                            NeoAction.status.in_(("queued", "pending")),
                            NeoAction.charge_type == "pricefeed",
                        )
                        .group_by(NeoAction.status)
                    ).all()
                )
                listed = session.execute(
                    select(
                        SourceListing.source,
                        SourceListing.markets,
                        func.extract("epoch", func.now() - SourceListing.listed_at),
                        SourceListing.error.is_not(None),
                    ).order_by(SourceListing.source)
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        feeds = GaugeMetricFamily("neosl_price_feeds", "Price feeds, by status", labels=["status"])
        for status in ("active", "paused"):
            feeds.add_metric([status], by_status.get(status, 0))
        yield feeds
        yield GaugeMetricFamily(
            "neosl_price_feeds_stale",
            f"Active price feeds without a priced round in the last {STALE_PERIODS} periods",
            value=stale or 0,
        )
        publications = GaugeMetricFamily(
            "neosl_price_publications_in_flight",
            "Price round publications queued or pending on chain",
            labels=["status"],
        )
        for status in ("queued", "pending"):
            publications.add_metric([status], in_flight.get(status, 0))
        yield publications
        markets = GaugeMetricFamily(
            "neosl_price_source_markets",
            "Markets in each source's stored market list (0: none stored yet)",
            labels=["source"],
        )
        age = GaugeMetricFamily(
            "neosl_price_source_listing_age_seconds",
            "Age of each source's stored market list (sources with one)",
            labels=["source"],
        )
        failing = GaugeMetricFamily(
            "neosl_price_source_listing_failing",
            "1 when the last fetch of a source's market list failed (the stored one stays)",
            labels=["source"],
        )
        for source, count, seconds, failed in listed:
            markets.add_metric([source], count)
            if seconds is not None:
                age.add_metric([source], float(seconds))
            failing.add_metric([source], 1 if failed else 0)
        yield markets
        yield age
        yield failing
