"""Executions and the executors' sandbox pools, for Prometheus (API and executor)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from redis import Redis, RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl.metrics import AGGREGATES_EVERY_SECONDS, AtMostEvery, ScrapeTimeCollector
from neosl.models import Execution
from neosl.models.functions import EXECUTION_STATUSES

log = logging.getLogger(__name__)


# Upper bounds (ms) of the execution duration histogram.
DURATION_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)


class ExecutionCollector(ScrapeTimeCollector):
    """Executions by status, their durations, and the executors' sandbox pools.

    Read at scrape time: counts and the histogram from the executions kept (see the
    retention), the pools from what each executor process reports to Redis every few seconds.
    """

    def __init__(self, session_factory: sessionmaker[Session], redis: Redis) -> None:
        self.session_factory = session_factory
        self.redis = redis
        self._aggregates: AtMostEvery[tuple[dict[str, int], list[int]]] = AtMostEvery(
            AGGREGATES_EVERY_SECONDS
        )

    def _read(self) -> tuple[dict[str, int], list[int]] | None:
        """Executions by status, and (count, sum, cumulative buckets) of their durations."""
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
            return None
        return by_status, [int(v or 0) for v in row]

    def collect(self) -> Iterator[Any]:
        # Both read every execution kept: at most once per AGGREGATES_EVERY_SECONDS.
        read = self._aggregates.get(self._read)
        if read is None:
            return
        by_status, row = read
        executions = GaugeMetricFamily(
            "neosl_executions", "Executions kept, by status", labels=["status"]
        )
        for status in EXECUTION_STATUSES:
            executions.add_metric([status], by_status.get(status, 0))
        yield executions
        total, duration_sum, *cumulative = row
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
