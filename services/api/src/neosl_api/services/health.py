"""Dependency checks behind /readyz, and the figures behind /metrics."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis import Redis, RedisError
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl.chain import FOLLOWER_CURSOR
from neosl.models import ChainCursor, Execution, NeoAction, PriceFeed, PriceRound, Transaction
from neosl.models.functions import EXECUTION_STATUSES

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


# Upper bounds (ms) of the execution duration histogram.
DURATION_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)


class ExecutionCollector(Collector):
    """Executions by status, their durations, and the executors' sandbox pools.

    Read at scrape time: counts and the histogram from the executions kept (see the
    retention), the pools from what each executor process reports to Redis every few seconds.
    """

    def __init__(self, session_factory: sessionmaker[Session], redis: Redis) -> None:
        self.session_factory = session_factory
        self.redis = redis

    def describe(self) -> list[Any]:
        # Nothing to query when the registry is built; names are known at scrape time.
        return []

    def collect(self) -> Iterator[Any]:
        try:
            with self.session_factory() as session:
                by_status = dict(
                    session.execute(
                        select(Execution.status, func.count()).group_by(Execution.status)
                    ).all()
                )
                buckets = [
                    func.count().filter(Execution.duration <= bound)
                    for bound in DURATION_BUCKETS_MS
                ]
                row = session.execute(
                    select(
                        func.count(), func.coalesce(func.sum(Execution.duration), 0), *buckets
                    ).where(Execution.duration.is_not(None))
                ).one()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        executions = GaugeMetricFamily(
            "neosl_executions", "Executions kept, by status", labels=["status"]
        )
        for status in EXECUTION_STATUSES:
            executions.add_metric([status], by_status.get(status, 0))
        yield executions
        total, duration_sum, *cumulative = (int(v or 0) for v in row)
        yield HistogramMetricFamily(
            "neosl_execution_duration_milliseconds",
            "Run time of finished executions (those kept), milliseconds",
            buckets=[
                *[(str(b), c) for b, c in zip(DURATION_BUCKETS_MS, cumulative, strict=True)],
                ("+Inf", total),
            ],
            sum_value=float(duration_sum),
        )
        size = GaugeMetricFamily(
            "neosl_sandbox_processes", "Live sandbox processes per executor", labels=["worker"]
        )
        restarts = GaugeMetricFamily(
            "neosl_sandbox_restarts",
            "Sandbox processes killed or crashed since the executor started",
            labels=["worker"],
        )
        try:
            for key in self.redis.scan_iter("nsl:executor:pool:*", count=100):
                stats = self.redis.hgetall(key)
                worker = key.decode().removeprefix("nsl:executor:pool:")
                size.add_metric([worker], float(stats.get(b"size", 0)))
                restarts.add_metric([worker], float(stats.get(b"restarts", 0)))
        except RedisError as exc:
            log.warning("metrics: redis unreachable: %s", exc)
        yield size
        yield restarts


# A feed whose newest priced round is older than this many periods is stale.
STALE_PERIODS = 3


class PriceFeedCollector(Collector):
    """Price feeds by status, the active ones gone stale, and publications in flight.

    Read at scrape time from indexed queries: a feed's newest priced round (rounds by feed
    and id), the open actions (the relay's partial index).
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def describe(self) -> list[Any]:
        return []

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
