"""Where the chain follower is: for /readyz and Prometheus, read from its cursor."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl.metrics import ScrapeTimeCollector
from neosl.models import ChainCursor
from neosl.onchain.blocks import FOLLOWER_CURSOR

log = logging.getLogger(__name__)


def follower_status(session: Session, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """Where the chain follower is: next block, chain height, lag in blocks, age of the figure.

    None before the follower first ran.
    """
    cursor = session.get(ChainCursor, FOLLOWER_CURSOR)
    if cursor is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    height = cursor.chain_height
    return {
        "next_block": cursor.position,
        "chain_height": height,
        "lag_blocks": None if height is None else max(height - cursor.position, 0),
        "updated_seconds_ago": round((now - cursor.updated_at).total_seconds(), 1),
    }


class FollowerCollector(ScrapeTimeCollector):
    """Where the chain follower is, read from its cursor at scrape time."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.session_factory() as session:
                status = follower_status(session)
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        if status is None:
            return
        for name, key, doc in (
            ("neosl_chain_follower_lag_blocks", "lag_blocks", "Blocks the follower is behind"),
            ("neosl_chain_follower_next_block", "next_block", "Next block the follower reads"),
            ("neosl_chain_height", "chain_height", "Block count the follower last saw"),
            (
                "neosl_chain_follower_update_age_seconds",
                "updated_seconds_ago",
                "Seconds since the follower last moved or checked",
            ),
        ):
            if status[key] is not None:
                yield GaugeMetricFamily(name, doc, value=status[key])
