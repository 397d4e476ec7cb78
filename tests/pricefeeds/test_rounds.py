"""Price rounds against local servers answering like the real market-data APIs: outliers
and failures, min_sources, the clock's schedule (no drift, no overlap, replicas, abandoned
rounds), each round run once by the pricefeed worker whatever number of times its message
comes, and the clock and the worker as processes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.celery_app import ServiceApp
from neosl.config import ConfigError, MasterKey, Settings, load_settings
from neosl.dispatch import Dispatcher
from neosl.exporter import Sources
from neosl.functions import secretbox
from neosl.metrics import QueueCollector
from neosl.models import PriceData, PriceFeed, PriceRound, Secret
from neosl.pricefeeds import catalog, definitions
from neosl.pricefeeds.metrics import PriceFeedCollector
from neosl_devstack.markets import MAINTENANCE, RATE_LIMITED, FakeMarkets
from neosl_pricefeed import clock, pricing, worker
from neosl_pricefeed.metrics import RoundMetrics
from neosl_pricefeed.sources.base import new_client
from neosl_pricefeed.tasks import PricefeedResources
from tests.factories import make_user
from tests.platform.test_jobs_after_commit import waiting
from tests.processes import running
from tests.serving import serving
from tests.waiting import wait_until

NEO_USD = {"binance": "NEOUSDT", "okx": "NEO-USDT", "kucoin": "NEO-USDT", "gate": "NEO_USDT"}
RUN_ROUND = jobs.RUN_ROUND


def feed(
    sessions: sessionmaker[Session],
    sources: list[str] | list[dict[str, Any]],
    *,
    min_sources: int = 1,
    frequency: int = 60,
    aggregation: str = "median",
    first: dt.datetime | None = None,
) -> int:
    with sessions() as db:
        user = make_user(db)
        row = PriceFeed(
            user_id=user.id,
            asset_pair="NEO/USD",
            frequency=frequency,
            sources=[s if isinstance(s, dict) else {"name": s} for s in sources],
            aggregation=aggregation,
            min_sources=min_sources,
            heartbeat=3600,
            next_round_at=first or dt.datetime.now(dt.UTC),
        )
        db.add(row)
        db.commit()
        return row.id


def sent_rounds(redis: Redis) -> list[int]:
    """The round ids of the RUN_ROUND messages waiting on the pricefeed queue, oldest first."""
    found = waiting(redis, jobs.PRICEFEED_QUEUE)
    assert {name for name, _ in found} <= {RUN_ROUND.name}
    return [kwargs["round_id"] for _, kwargs in found]


def round_row(sessions: sessionmaker[Session], round_id: int) -> PriceRound:
    with sessions() as db:
        return db.get_one(PriceRound, round_id)


@contextmanager
def askers(settings: Settings) -> Iterator[pricing.Askers]:
    with (
        new_client() as client,
        pricing.generic_fetcher(settings) as fetcher,
        ThreadPoolExecutor(8) as pool,
    ):
        yield pricing.Askers(client, fetcher, pool)


def one_round(
    sessions: sessionmaker[Session],
    settings: Settings,
    producer: Celery,
    metrics: RoundMetrics | None = None,
) -> PriceRound:
    """Queue the one due feed's round as the clock does, and run it as the worker does."""
    dispatcher = Dispatcher(producer)
    with sessions() as db:
        (scheduled,) = clock.claim_due(db, dispatcher, dt.datetime.now(dt.UTC), 10)
    with askers(settings) as asking:
        pricing.run_round(
            sessions, settings, dispatcher, asking, metrics or RoundMetrics(), scheduled.round_id
        )
    return round_row(sessions, scheduled.round_id)


def test_a_round_drops_the_outlier_and_takes_the_median(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
) -> None:
    for name, price in zip(NEO_USD, ("12.30", "12.31", "12.29", "99.5"), strict=True):
        markets.set_price(name, NEO_USD[name], price)
    feed_id = feed(sessions, list(NEO_USD))
    done = one_round(sessions, pointed, producer)
    assert (done.status, done.reason, done.price) == ("priced", None, Decimal("12.30000000"))
    assert done.sources_used == 3
    by_source = {r["source"]: r for r in done.source_data}
    assert by_source["binance"]["price"] == "12.30"
    assert by_source["binance"]["used"] is True
    assert isinstance(by_source["okx"]["latency_ms"], int)
    assert by_source["gate"]["used"] is False
    assert "from the median" in by_source["gate"]["rejected"]
    with sessions() as db:
        stored = db.scalars(select(PriceData).where(PriceData.feed_id == feed_id)).one()
    assert (stored.id, stored.price) == (done.price_data_id, Decimal("12.30000000"))
    assert stored.source_data == done.source_data
    # The trigger-scheduler is asked to evaluate the feed's price triggers.
    assert waiting(redis_client, jobs.SCHEDULER_QUEUE) == [
        (jobs.EVALUATE_PRICE_TRIGGERS.name, {"feed_id": feed_id})
    ]


def test_too_few_sources_left_fails_the_round_with_the_reasons(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
) -> None:
    markets.set_price("binance", "NEOUSDT", "12.30")
    markets.set_price("okx", "NEO-USDT", "12.31")
    markets.fail("okx", RATE_LIMITED)
    markets.fail("kucoin", MAINTENANCE)
    markets.delay("gate", 3.0)  # longer than the 1 s limit
    feed_id = feed(sessions, list(NEO_USD), min_sources=2)
    done = one_round(sessions, pointed, producer)
    assert done.status == "failed"
    assert done.price is None
    assert done.reason == "1 of 4 sources usable, 2 needed (3 failed, 0 rejected as outliers)"
    kinds = {r["source"]: r["error_kind"] for r in done.source_data}
    assert kinds == {
        "binance": None,
        "okx": "rate_limited",
        "kucoin": "maintenance",
        "gate": "timeout",
    }
    with sessions() as db:
        assert db.scalars(select(PriceData).where(PriceData.feed_id == feed_id)).all() == []
    assert waiting(redis_client, jobs.SCHEDULER_QUEUE) == []


def test_the_schedule_does_not_drift_skips_late_slots_and_never_overlaps(
    sessions: sessionmaker[Session], redis_client: Redis, settings: Settings, producer: Celery
) -> None:
    dispatcher = Dispatcher(producer)
    slot = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    feed_id = feed(sessions, ["binance"], frequency=10, first=slot)
    with sessions() as db:
        # 35 s late: the slot of 12:00:30 is queued, the next is 12:00:40.
        (queued,) = clock.claim_due(db, dispatcher, slot + dt.timedelta(seconds=35), 10)
        assert queued.scheduled_at == slot + dt.timedelta(seconds=30)
        assert db.get_one(PriceFeed, feed_id).next_round_at == slot + dt.timedelta(seconds=40)
    # Queued, and its job sent with the commit that created it.
    assert round_row(sessions, queued.round_id).status == "queued"
    assert sent_rounds(redis_client) == [queued.round_id]
    with sessions() as db:
        # While it waits in the queue, the feed's next slot is not claimed, however late.
        assert clock.claim_due(db, dispatcher, slot + dt.timedelta(seconds=55), 10) == []
        # A worker takes it; the same message delivered again finds nothing to run.
        taken = slot + dt.timedelta(seconds=56)
        claimed = pricing.claim(db, settings, queued.round_id, taken)
        assert isinstance(claimed, pricing.Claimed)
        assert (claimed.feed_id, claimed.scheduled_at) == (feed_id, queued.scheduled_at)
        assert pricing.claim(db, settings, queued.round_id, taken) is None
        # While it runs, the feed's next slot is not claimed either.
        assert clock.claim_due(db, dispatcher, slot + dt.timedelta(seconds=70), 10) == []
        # A round whose worker died is failed after a while, and the feed goes on.
        later = taken + clock.ABANDONED_AFTER + dt.timedelta(seconds=1)
        (next_one,) = clock.claim_due(db, dispatcher, later, 10)
    lost = round_row(sessions, queued.round_id)
    assert (lost.status, lost.reason) == ("failed", clock.LOST)
    assert next_one.scheduled_at > queued.scheduled_at
    assert (next_one.scheduled_at - slot) % dt.timedelta(seconds=10) == dt.timedelta(0)
    assert sent_rounds(redis_client) == [queued.round_id, next_one.round_id]
    # No worker takes the next one: it is given up in turn, and its message, when it comes
    # at last, runs nothing.
    with sessions() as db:
        given_up = later + clock.ABANDONED_AFTER + dt.timedelta(seconds=1)
        (third,) = clock.claim_due(db, dispatcher, given_up, 10)
    never = round_row(sessions, next_one.round_id)
    assert (never.status, never.reason) == ("failed", clock.NOT_TAKEN)
    with askers(settings) as asking:
        skipped = pricing.run_round(
            sessions, settings, dispatcher, asking, RoundMetrics(), next_one.round_id
        )
    assert skipped == pricing.SKIPPED
    assert round_row(sessions, next_one.round_id).reason == clock.NOT_TAKEN
    # The lost round's worker was only slow: its late result is not stored (no price, no
    # publication) since the feed moved on.
    with sessions() as db:
        assert pricing.finish(db, settings, dispatcher, claimed, Decimal("12.3"), None, []) is None
    lost = round_row(sessions, queued.round_id)
    assert (lost.status, lost.price) == ("failed", None)
    with sessions() as db:
        assert db.scalars(select(PriceData).where(PriceData.feed_id == feed_id)).all() == []
        # One round per slot, ever.
        slots = db.scalars(select(PriceRound.scheduled_at).where(PriceRound.feed_id == feed_id))
        assert sorted(slots) == sorted(
            {queued.scheduled_at, next_one.scheduled_at, third.scheduled_at}
        )


@pytest.mark.slow
def test_a_round_given_up_while_its_worker_waits_stores_nothing(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
) -> None:
    """The clock gives up on a running round while its worker waits on a slow source; when
    the worker finishes after all, nothing of it is stored."""
    markets.set_price("binance", "NEOUSDT", "12.30")
    markets.delay("binance", 2.0)
    patient = dataclasses.replace(pointed, price_source_timeout_seconds=5.0)
    feed_id = feed(sessions, ["binance"])
    dispatcher = Dispatcher(producer)
    with sessions() as db:
        (queued,) = clock.claim_due(db, dispatcher, dt.datetime.now(dt.UTC), 10)
    outcome: list[str] = []
    metrics = RoundMetrics()
    with askers(patient) as asking:
        run = threading.Thread(
            target=lambda: outcome.append(
                pricing.run_round(sessions, patient, dispatcher, asking, metrics, queued.round_id)
            )
        )
        run.start()
        wait_until(lambda: round_row(sessions, queued.round_id).status == "running", "its start")
        with sessions() as db:
            late = dt.datetime.now(dt.UTC) + clock.ABANDONED_AFTER + dt.timedelta(seconds=1)
            clock.claim_due(db, dispatcher, late, 10)
        assert round_row(sessions, queued.round_id).reason == clock.LOST
        run.join(30)
    assert outcome == [pricing.GIVEN_UP]
    given_up = round_row(sessions, queued.round_id)
    assert (given_up.status, given_up.price, given_up.source_data) == ("failed", None, [])
    with sessions() as db:
        assert db.scalars(select(PriceData).where(PriceData.feed_id == feed_id)).all() == []
    assert waiting(redis_client, jobs.SCHEDULER_QUEUE) == []
    assert (
        metrics.registry.get_sample_value("neosl_price_rounds_total", {"status": "priced"}) is None
    )


def test_concurrent_claims_take_each_feed_once(
    sessions: sessionmaker[Session], producer: Celery, redis_client: Redis
) -> None:
    ids = [feed(sessions, ["binance"]) for _ in range(40)]
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    taken: list[clock.Scheduled] = []
    lock = threading.Lock()

    def replica() -> None:
        dispatcher = Dispatcher(producer)
        while True:
            with sessions() as db:
                got = clock.claim_due(db, dispatcher, now, 3)
            if not got:
                return
            with lock:
                taken.extend(got)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s.feed_id for s in taken) == sorted(ids)
    # Each round's job sent once.
    assert sorted(sent_rounds(redis_client)) == sorted(s.round_id for s in taken)


def test_a_round_that_fails_unexpectedly_is_recorded_failed_at_once(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
) -> None:
    """A bug in a round (here a weight that is no number, which the API would refuse) fails
    it as an internal error, so the feed's next slot need not wait for it to be given up."""
    markets.set_price("binance", "NEOUSDT", "12.30")
    feed(sessions, [{"name": "binance", "weight": "heavy"}], aggregation="weighted")
    dispatcher = Dispatcher(producer)
    with sessions() as db:
        (queued,) = clock.claim_due(db, dispatcher, dt.datetime.now(dt.UTC), 10)
    metrics = RoundMetrics()
    with askers(pointed) as asking, pytest.raises(InvalidOperation):
        pricing.run_round(sessions, pointed, dispatcher, asking, metrics, queued.round_id)
    failed = round_row(sessions, queued.round_id)
    assert (failed.status, failed.reason) == ("failed", "internal error")
    assert failed.finished_at is not None
    assert metrics.registry.get_sample_value("neosl_price_rounds_total", {"status": "failed"}) == 1


# -- the pricefeed worker ------------------------------------------------------------------


@pytest.fixture
def worker_app(pointed: Settings) -> Iterator[ServiceApp]:
    app = worker.create_worker_app(pointed)
    yield app
    app.close_resources()
    app.close()


def task_runs(app: ServiceApp) -> float:
    runs = app.task_metrics.registry.get_sample_value(
        "neosl_task_runs_total", {"task": RUN_ROUND.name, "outcome": "succeeded"}
    )
    return runs or 0.0


def round_metrics(app: ServiceApp) -> RoundMetrics:
    resources = app.resources
    assert isinstance(resources, PricefeedResources)
    return resources.metrics


@pytest.mark.celery
def test_a_redelivered_round_runs_once(
    sessions: sessionmaker[Session],
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
    worker_app: ServiceApp,
) -> None:
    """Celery acknowledges a message after its task ran, so a worker killed mid-round gets
    its message delivered again (kombu puts the very message back on the queue): the second
    delivery, even at the same time as the first, runs nothing."""
    markets.set_price("binance", "NEOUSDT", "12.30")
    feed_id = feed(sessions, ["binance"])
    with sessions() as db:
        (queued,) = clock.claim_due(db, Dispatcher(producer), dt.datetime.now(dt.UTC), 10)
    (message,) = redis_client.lrange(jobs.PRICEFEED_QUEUE, 0, -1)
    redis_client.lpush(jobs.PRICEFEED_QUEUE, message)
    assert sent_rounds(redis_client) == [queued.round_id, queued.round_id]
    with start_worker(
        worker_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=[jobs.PRICEFEED_QUEUE],
    ):
        wait_until(lambda: task_runs(worker_app) == 2, "both deliveries run")
    done = round_row(sessions, queued.round_id)
    assert (done.status, done.price) == ("priced", Decimal("12.30"))
    with sessions() as db:
        assert db.scalar(select(func.count()).where(PriceData.feed_id == feed_id)) == 1
        assert db.scalar(select(func.count()).where(PriceRound.feed_id == feed_id)) == 1
    assert waiting(redis_client, jobs.SCHEDULER_QUEUE) == [
        (jobs.EVALUATE_PRICE_TRIGGERS.name, {"feed_id": feed_id})
    ]
    counted = round_metrics(worker_app).registry.get_sample_value
    assert counted("neosl_price_rounds_total", {"status": "priced"}) == 1
    assert len(markets.asked("binance")) == 1


@pytest.mark.celery
def test_a_slow_source_holds_up_no_other_round(
    sessions: sessionmaker[Session],
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
    worker_app: ServiceApp,
) -> None:
    """The worker runs rounds in threads: a round waiting on slow sources (asked at once,
    each cut at the 1 s limit) does not keep the next round waiting."""
    markets.set_price("binance", "NEOUSDT", "12.30")
    markets.delay("okx", 3.0)
    markets.delay("gate", 3.0)
    slow_id = feed(sessions, ["okx", "gate"])
    with sessions() as db:
        (slow,) = clock.claim_due(db, Dispatcher(producer), dt.datetime.now(dt.UTC), 10)
    fast_id = feed(sessions, ["binance"])
    with sessions() as db:
        (fast,) = clock.claim_due(db, Dispatcher(producer), dt.datetime.now(dt.UTC), 10)
    assert sent_rounds(redis_client) == [slow.round_id, fast.round_id]
    assert (slow.feed_id, fast.feed_id) == (slow_id, fast_id)
    with start_worker(
        worker_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=[jobs.PRICEFEED_QUEUE],
    ):
        wait_until(lambda: task_runs(worker_app) == 2, "both rounds")
    slow_row, fast_row = round_row(sessions, slow.round_id), round_row(sessions, fast.round_id)
    assert (slow_row.status, fast_row.status) == ("failed", "priced")
    assert {r["error_kind"] for r in slow_row.source_data} == {"timeout"}
    assert slow_row.finished_at is not None
    assert fast_row.finished_at is not None
    assert fast_row.finished_at < slow_row.finished_at
    # Its two sources were asked at once: one timeout, not two in a row.
    assert slow_row.finished_at - slow_row.started_at < dt.timedelta(seconds=2)


@pytest.mark.celery
def test_the_worker_counts_its_rounds(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
    worker_app: ServiceApp,
) -> None:
    """What the pricefeed worker exports: rounds by status, their duration, and what was
    decided about publishing each priced round; the feeds' state and its queue."""
    for name, price in zip(NEO_USD, ("12.30", "12.31", "12.29", "12.30"), strict=True):
        markets.set_price(name, NEO_USD[name], price)
    feed(sessions, list(NEO_USD))
    feed(sessions, list(NEO_USD), min_sources=5)  # cannot be priced by four sources
    with sessions() as db:
        scheduled = clock.claim_due(db, Dispatcher(producer), dt.datetime.now(dt.UTC), 10)
    assert len(scheduled) == 2
    metrics = round_metrics(worker_app)
    got = metrics.registry.get_sample_value
    with start_worker(
        worker_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=[jobs.PRICEFEED_QUEUE],
    ):
        wait_until(
            lambda: got("neosl_price_round_duration_seconds_count") == 2, "both rounds counted"
        )
    assert got("neosl_price_rounds_total", {"status": "priced"}) == 1
    assert got("neosl_price_rounds_total", {"status": "failed"}) == 1
    # The priced round's publication decision is counted, once.
    decided = {
        labels["publication"]: value
        for labels, value in (
            (s.labels, s.value)
            for family in metrics.registry.collect()
            for s in family.samples
            if s.name == "neosl_price_round_publications_total"
        )
    }
    assert sum(decided.values()) == 1
    assert metrics.registry in worker_app.registries
    exported = worker.collectors(pointed, Sources(pointed))
    assert {type(c) for c in exported} == {PriceFeedCollector, QueueCollector}


def test_the_worker_needs_the_secrets_key_and_the_clock_does_not(
    server_env: dict[str, str], sessions: sessionmaker[Session], producer: Celery
) -> None:
    bare = load_settings({k: v for k, v in server_env.items() if k != "NSL_SECRETS_KEY"})
    with pytest.raises(ConfigError, match="NSL_SECRETS_KEY is not set"):
        worker.create_worker_app(bare)
    assert clock.Clock(bare, sessions, Dispatcher(producer)).tick() >= 0


@pytest.mark.celery
def test_the_clock_and_the_worker_run_feeds_on_schedule_with_two_clocks(
    sessions: sessionmaker[Session],
    server_env: dict[str, str],
    markets: FakeMarkets,
    tmp_path: Path,
    redis_client: Redis,
) -> None:
    for name, symbol in NEO_USD.items():
        markets.set_price(name, symbol, "12.5")
    env: dict[str, Any] = {
        **server_env,
        "NSL_PRICEFEED_MIN_FREQUENCY_SECONDS": "1",
        **{
            f"NSL_PRICE_SOURCE_{name.upper()}_URL": markets.base_url(name) for name in catalog.NAMES
        },
    }
    # The clock schedules and asks no source: it holds no secrets key.
    clock_env = {k: v for k, v in env.items() if k != "NSL_SECRETS_KEY"}
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    feed_id = feed(sessions, list(NEO_USD), frequency=1, first=start, min_sources=4)

    def rounds() -> list[PriceRound]:
        with sessions() as db:
            return list(
                db.scalars(
                    select(PriceRound)
                    .where(PriceRound.feed_id == feed_id)
                    .order_by(PriceRound.scheduled_at)
                )
            )

    def priced() -> int:
        return sum(r.status == "priced" for r in rounds())

    clock_cmd = ["neosl_pricefeed.clock"]
    worker_cmd = ["neosl_pricefeed", "--pool", "threads", "--concurrency", "4"]
    with (
        running(clock_cmd, clock_env, tmp_path / "clock-a.log"),
        running(clock_cmd, clock_env, tmp_path / "clock-b.log"),
        running(worker_cmd, env, tmp_path / "worker.log"),
    ):
        wait_until(lambda: priced() >= 5, "five rounds", timeout=60)
        with sessions() as db:
            db.get_one(PriceFeed, feed_id).status = "paused"
            db.commit()
    done = [r for r in rounds() if r.status not in clock.IN_PROGRESS]
    assert all(r.status == "priced" for r in done), [(r.status, r.reason) for r in done]
    assert all(r.price == Decimal("12.5") for r in done)
    slots = [r.scheduled_at for r in done]
    # On the schedule: whole seconds from the first slot, each once, none overlapping.
    assert len(set(slots)) == len(slots)
    assert all((s - start) % dt.timedelta(seconds=1) == dt.timedelta(0) for s in slots)
    for before, after in itertools.pairwise(done):
        assert before.finished_at is not None
        assert after.started_at >= before.finished_at


# -- generic sources ------------------------------------------------------------------------


class _KeyedApi(BaseHTTPRequestHandler):
    """A keyed price API: the price only for the right key."""

    key = "k-" + secrets.token_hex(8)
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        given = self.headers.get("X-Api-Key")
        self.seen.append(given)
        ok = given == self.key
        body = json.dumps({"data": {"price": "12.32"}} if ok else {"error": "bad key"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def keyed_api() -> Iterator[str]:
    _KeyedApi.seen.clear()
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _KeyedApi)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/price?asset=NEO"


def keyed_feed(
    sessions: sessionmaker[Session],
    settings: Settings,
    sources: list[Any],
    keys: tuple[MasterKey, ...],
) -> None:
    """A NEO/USD feed over ``sources`` (validated as the API does), due now, whose owner
    holds the keyed API's key as secret PRICE_KEY, sealed under ``keys``."""
    with sessions() as db:
        fields = definitions.validated(
            db,
            settings,
            {
                "asset_pair": "NEO/USD",
                "frequency": 60,
                "sources": sources,
                "aggregation": "median",
                "deviation": None,
                "heartbeat": None,
                "min_sources": 1,
                "target": None,
                "usdt_as_usd": True,
            },
        )
        user = make_user(db)
        sealed = secretbox.seal(keys, user.id, "PRICE_KEY", 1, _KeyedApi.key)
        db.add(
            Secret(
                user_id=user.id,
                name="PRICE_KEY",
                value=sealed.value,
                wrapped_key=sealed.wrapped_key,
                master_key_id=sealed.master_key_id,
            )
        )
        db.add(PriceFeed(user_id=user.id, next_round_at=dt.datetime.now(dt.UTC), **fields))
        db.commit()


def test_a_generic_source_reads_its_secret_and_goes_through_the_ssrf_guard(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    keyed_api: str,
) -> None:
    markets.set_price("binance", "NEOUSDT", "12.30")
    generic = {
        "url": keyed_api,
        "json_path": "$.data.price",
        "headers": {"X-Api-Key": "{{secrets.PRICE_KEY}}"},
        "name": "keyed",
    }
    keyed_feed(sessions, pointed, ["binance", generic], pointed.secrets_keys)

    # The local API is an internal address: refused unless the operator allows it.
    guarded = dataclasses.replace(pointed, fetch_allow=())
    refused = one_round(sessions, guarded, producer)
    by_source = {r["source"]: r for r in refused.source_data}
    assert by_source["http:keyed"]["error_kind"] == "unreachable"
    assert _KeyedApi.key not in json.dumps(refused.source_data)
    assert refused.price == Decimal("12.30")  # binance alone
    assert _KeyedApi.seen == []

    allowed = dataclasses.replace(pointed, fetch_allow=("127.0.0.1",))
    with sessions() as db:
        db.execute(update(PriceFeed).values(next_round_at=dt.datetime.now(dt.UTC)))
        db.commit()
    done = one_round(sessions, allowed, producer)
    by_source = {r["source"]: r for r in done.source_data}
    assert by_source["http:keyed"]["price"] == "12.32"
    assert by_source["http:keyed"]["used"] is True
    assert done.price == Decimal("12.31")  # the median of 12.30 and 12.32
    assert _KeyedApi.seen == [_KeyedApi.key]
    assert _KeyedApi.key not in json.dumps(done.source_data)


def test_unreadable_secrets_fail_only_the_sources_that_name_them(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    keyed_api: str,
) -> None:
    markets.set_price("binance", "NEOUSDT", "12.30")
    keyed = {"url": keyed_api, "json_path": "$.data.price", "name": "keyed"}
    named = {**keyed, "headers": {"X-Api-Key": "{{secrets.PRICE_KEY}}"}, "name": "named"}
    # Sealed under a master key the worker does not have.
    keyed_feed(
        sessions, pointed, ["binance", keyed, named], (MasterKey("gone", secrets.token_bytes(32)),)
    )
    allowed = dataclasses.replace(pointed, fetch_allow=("127.0.0.1",))
    done = one_round(sessions, allowed, producer)
    by_source = {r["source"]: r for r in done.source_data}
    assert by_source["http:named"]["error"] == "http:named: the tenant's secrets cannot be read"
    # The source naming no secret was asked as usual (the API refuses it without the key).
    assert by_source["http:keyed"]["error_kind"] == "http_error"
    assert by_source["binance"]["price"] == "12.30"
    assert done.price == Decimal("12.30")
