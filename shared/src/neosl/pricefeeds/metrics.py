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
from neosl.models import NeoAction, PriceFeed, PriceRound

log = logging.getLogger(__name__)


# A feed whose newest priced round is older than this many periods is stale.
STALE_PERIODS = 3


class PriceFeedCollector(ScrapeTimeCollector):
    """Price feeds by status, the active ones gone stale, and publications in flight.

    Read at scrape time from indexed queries: a feed's newest priced round (rounds by feed
    and id), the open actions (the relay's partial index).
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
