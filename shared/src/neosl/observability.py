"""What the services export to Prometheus, read at scrape time from the database, Redis or
the node: the figures that hold for the whole system, whichever process is asked.

Each service exports those of its own domain (``neosl.exporter``); the API exports a
summary. Every collector logs and skips its figures when its source is unreachable, so a
scrape never fails because the database is away.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis import Redis, RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from neosl import balances
from neosl.chain import FOLLOWER_CURSOR
from neosl.models import (
    ChainCursor,
    Execution,
    GasAccount,
    NeoAction,
    PriceFeed,
    PriceRound,
    Transaction,
    Trigger,
)
from neosl.models.functions import EXECUTION_STATUSES
from neosl.money import from_units
from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable

log = logging.getLogger(__name__)

TRIGGER_TYPES = ("cron", "price", "blockchain", "webhook")


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


class _AtMostEvery[T]:
    """The last value ``read`` gave, read again only once ``seconds`` have passed (for
    figures too costly to read at every scrape); scrapes in between wait for a read under
    way instead of starting their own."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._value: T | None = None
        self._read_at = -seconds
        self._lock = threading.Lock()

    def get(self, read: Callable[[], T | None]) -> T | None:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.seconds:
                self._value = read()
                self._read_at = now
            return self._value


class ScrapeTimeCollector(Collector):
    """A collector whose figures are read at each scrape: nothing to describe beforehand
    (the registry would otherwise query the sources when it is built)."""

    def describe(self) -> list[Any]:
        return []


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


# The ledger's sums by type and status and its check (every balance against its
# transactions) read every transaction: they are computed at most this often per process
# and exported from memory in between.
LEDGER_CHECK_SECONDS = 300.0


@dataclass(frozen=True)
class _Books:
    by_kind: list[tuple[str, str, int, Decimal]]
    mismatched: int


class BankCollector(ScrapeTimeCollector):
    """The gas bank: balances, withdrawals pending and actions in flight at every scrape;
    the transactions' sums by type and status and the accounts the ledger check finds wrong
    (``neosl ledger verify``) every ``LEDGER_CHECK_SECONDS`` unless ``books`` is off."""

    def __init__(self, session_factory: sessionmaker[Session], *, books: bool = True) -> None:
        self.session_factory = session_factory
        self.books = books
        self._books: _AtMostEvery[_Books] = _AtMostEvery(LEDGER_CHECK_SECONDS)

    @staticmethod
    def _read_books(session: Session) -> _Books:
        t = Transaction
        rows = session.execute(
            select(t.type, t.status, func.count(), func.coalesce(func.sum(t.amount), 0))
            .group_by(t.type, t.status)
            .order_by(t.type, t.status)
        ).all()
        mismatched = len(balances.verify(session))
        return _Books([(a, b, c, Decimal(d)) for a, b, c, d in rows], mismatched)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        t = Transaction
        try:
            with self.session_factory() as session:
                balance = session.scalar(select(func.coalesce(func.sum(GasAccount.balance), 0)))
                pending = session.scalar(
                    select(func.count()).where(t.type == "withdraw", t.status == "pending")
                )
                in_flight = dict(
                    session.execute(
                        select(NeoAction.status, func.count())
                        .where(NeoAction.status.in_(("queued", "pending")))
                        .group_by(NeoAction.status)
                    ).all()
                )
                books = self._books.get(lambda: self._read_books(session)) if self.books else None
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        yield GaugeMetricFamily(
            "neosl_ledger_balance_gas", "GAS the tenants hold in all", value=float(balance or 0)
        )
        yield GaugeMetricFamily(
            "neosl_withdrawals_pending",
            "Withdrawals debited and not yet settled",
            value=pending or 0,
        )
        actions = GaugeMetricFamily(
            "neosl_relay_actions_in_flight",
            "On-chain actions queued or sent and not yet settled",
            labels=["status"],
        )
        for status in ("queued", "pending"):
            actions.add_metric([status], in_flight.get(status, 0))
        yield actions
        if books is None:
            return
        amounts = GaugeMetricFamily(
            "neosl_ledger_transactions_gas",
            "Sum of ledger transactions, GAS, by type and status",
            labels=["type", "status"],
        )
        counts = GaugeMetricFamily(
            "neosl_ledger_transactions",
            "Ledger transactions, by type and status",
            labels=["type", "status"],
        )
        for kind, status, count, amount in books.by_kind:
            amounts.add_metric([kind, status], float(amount))
            counts.add_metric([kind, status], count)
        yield amounts
        yield counts
        yield GaugeMetricFamily(
            "neosl_ledger_mismatched_accounts",
            "Accounts whose balance differs from the sum of their transactions",
            value=books.mismatched,
        )


# The node is asked for the hot wallet's balance at most this often per process.
HOT_WALLET_EVERY_SECONDS = 15.0


class HotWalletCollector(ScrapeTimeCollector):
    """The GAS the hot wallet holds on chain, asked of the node at most every 15 s."""

    def __init__(self, rpc_urls: tuple[str, ...], address: str) -> None:
        self.rpc_urls = rpc_urls
        self.address = address
        self._balance: _AtMostEvery[float] = _AtMostEvery(HOT_WALLET_EVERY_SECONDS)

    def _read_balance(self) -> float | None:
        try:
            with NeoRpc(self.rpc_urls, timeout=5) as rpc:
                return float(from_units(rpc.gas_balance(self.address)))
        except (RpcError, RpcUnavailable) as exc:
            log.warning("metrics: hot wallet balance unknown: %s", exc)
            return None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        balance = self._balance.get(self._read_balance)
        if balance is not None:
            yield GaugeMetricFamily(
                "neosl_hot_wallet_balance_gas", "GAS the hot wallet holds on chain", value=balance
            )


class QueueCollector(ScrapeTimeCollector):
    """How many jobs wait in each of ``queues`` (the Redis lists Celery reads)."""

    def __init__(self, redis: Redis, queues: tuple[str, ...]) -> None:
        self.redis = redis
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for queue in self.queues:
                pipe.llen(queue)
            lengths = pipe.execute()
        except RedisError as exc:
            log.warning("metrics: redis unreachable: %s", exc)
            return
        family = GaugeMetricFamily(
            "neosl_queue_length", "Jobs waiting in a queue", labels=["queue"]
        )
        for queue, length in zip(self.queues, lengths, strict=True):
            family.add_metric([queue], length)
        yield family


class TriggerCollector(ScrapeTimeCollector):
    """Triggers by type and status."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.session_factory() as session:
                rows = session.execute(
                    select(Trigger.trigger_type, Trigger.status, func.count()).group_by(
                        Trigger.trigger_type, Trigger.status
                    )
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            return
        counts = {(kind, status): n for kind, status, n in rows}
        family = GaugeMetricFamily(
            "neosl_triggers", "Triggers, by type and status", labels=["type", "status"]
        )
        for kind in TRIGGER_TYPES:
            for status in ("active", "paused"):
                family.add_metric([kind, status], counts.get((kind, status), 0))
        yield family


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
