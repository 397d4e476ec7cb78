"""Dependency checks behind /readyz, and the figures behind /metrics."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis, RedisError
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl.chain import FOLLOWER_CURSOR
from neosl.models import ChainCursor, Transaction

log = logging.getLogger(__name__)


def check_dependencies(session_factory: sessionmaker[Session], redis: Redis) -> dict[str, str]:
    """``{"database": "ok" | "unreachable", "broker": ...}``; never raises."""
    checks = {"database": "ok", "broker": "ok"}
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    try:
        redis.ping()
    except RedisError as exc:
        log.warning("readiness: broker unreachable: %s", exc)
        checks["broker"] = "unreachable"
    return checks


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


class LedgerCollector(Collector):
    """Prometheus gauges read from the database at scrape time (no state in the API process)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.session_factory() as session:
                status = follower_status(session)
                pending = session.scalar(
                    select(func.count()).where(
                        Transaction.type == "withdraw", Transaction.status == "pending"
                    )
                )
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        if status is not None:
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
        yield GaugeMetricFamily(
            "neosl_withdrawals_pending",
            "Withdrawals debited and not yet settled",
            value=pending or 0,
        )
