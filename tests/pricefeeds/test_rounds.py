"""Price rounds against local servers answering like the real market-data APIs: outliers
and failures, min_sources, the schedule (no drift, no overlap, replicas), and the rounds
process itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from celery import Celery
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import MasterKey, Settings
from neosl.dispatch import Dispatcher
from neosl.functions import secretbox
from neosl.models import PriceData, PriceFeed, PriceRound, Secret
from neosl.pricefeeds import catalog, definitions
from neosl_devstack.markets import MAINTENANCE, RATE_LIMITED, FakeMarkets
from neosl_pricefeed import rounds
from neosl_pricefeed.sources.base import new_client
from tests.factories import make_user
from tests.platform.test_jobs_after_commit import waiting
from tests.processes import running
from tests.serving import serving
from tests.waiting import wait_until

NEO_USD = {"binance": "NEOUSDT", "okx": "NEO-USDT", "kucoin": "NEO-USDT", "gate": "NEO_USDT"}


@pytest.fixture
def markets() -> Iterator[FakeMarkets]:
    with FakeMarkets() as fake:
        yield fake


@pytest.fixture
def pointed(settings: Settings, markets: FakeMarkets) -> Settings:
    urls = tuple((name, markets.base_url(name)) for name in catalog.NAMES)
    return dataclasses.replace(settings, price_source_urls=urls, price_source_timeout_seconds=1.0)


def feed(
    sessions: sessionmaker[Session],
    sources: list[str],
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
            sources=[{"name": s} for s in sources],
            aggregation=aggregation,
            min_sources=min_sources,
            heartbeat=3600,
            next_round_at=first or dt.datetime.now(dt.UTC),
        )
        db.add(row)
        db.commit()
        return row.id


def one_round(sessions: sessionmaker[Session], settings: Settings, producer: Celery) -> PriceRound:
    with sessions() as db:
        (claimed,) = rounds.claim_due(db, dt.datetime.now(dt.UTC), 10)
    with (
        new_client() as client,
        rounds.generic_fetcher(settings) as fetcher,
        ThreadPoolExecutor(8) as pool,
    ):
        askers = rounds.Askers(client, fetcher, pool)
        rounds.run_round(sessions, settings, Dispatcher(producer), askers, claimed)
    with sessions() as db:
        return db.get_one(PriceRound, claimed.round_id)


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
    slot = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    feed_id = feed(sessions, ["binance"], frequency=10, first=slot)
    with sessions() as db:
        # 35 s late: the slot of 12:00:30 runs, the next is 12:00:40.
        (claimed,) = rounds.claim_due(db, slot + dt.timedelta(seconds=35), 10)
        assert claimed.scheduled_at == slot + dt.timedelta(seconds=30)
        assert db.get_one(PriceFeed, feed_id).next_round_at == slot + dt.timedelta(seconds=40)
        # While it runs, the feed's next slot is not claimed, however late.
        assert rounds.claim_due(db, slot + dt.timedelta(seconds=55), 10) == []
        # A round whose worker died is failed after a while, and the feed goes on.
        later = dt.datetime.now(dt.UTC) + rounds.ABANDONED_AFTER + dt.timedelta(seconds=1)
        (next_one,) = rounds.claim_due(db, later, 10)
        lost = db.get_one(PriceRound, claimed.round_id)
        assert (lost.status, lost.reason) == ("failed", "worker lost: the round never finished")
        assert next_one.scheduled_at > claimed.scheduled_at
        assert (next_one.scheduled_at - slot) % dt.timedelta(seconds=10) == dt.timedelta(0)
        db.commit()
    # The lost round's worker was only slow: its late result is not stored (no price, no
    # publication) since the feed moved on.
    with sessions() as db:
        rounds.finish(db, settings, Dispatcher(producer), claimed, Decimal("12.3"), None, [])
    with sessions() as db:
        lost = db.get_one(PriceRound, claimed.round_id)
        assert (lost.status, lost.price) == ("failed", None)
        assert db.scalars(select(PriceData).where(PriceData.feed_id == feed_id)).all() == []


def test_concurrent_claims_take_each_feed_once(
    sessions: sessionmaker[Session], redis_client: Redis
) -> None:
    ids = [feed(sessions, ["binance"]) for _ in range(40)]
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    taken: list[int] = []
    lock = threading.Lock()

    def replica() -> None:
        while True:
            with sessions() as db:
                got = rounds.claim_due(db, now, 3)
            if not got:
                return
            with lock:
                taken.extend(c.feed_id for c in got)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)


def test_the_rounds_process_runs_feeds_on_schedule_with_two_replicas(
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
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    feed_id = feed(sessions, list(NEO_USD), frequency=1, first=start, min_sources=4)

    def priced() -> list[PriceRound]:
        with sessions() as db:
            return list(
                db.scalars(
                    select(PriceRound)
                    .where(PriceRound.feed_id == feed_id)
                    .order_by(PriceRound.scheduled_at)
                )
            )

    cmd = ["neosl_pricefeed.rounds"]
    with running(cmd, env, tmp_path / "a.log"), running(cmd, env, tmp_path / "b.log"):
        wait_until(lambda: len(priced()) >= 5, "five rounds", timeout=60)
        with sessions() as db:
            db.get_one(PriceFeed, feed_id).status = "paused"
            db.commit()
    done = [r for r in priced() if r.status != "running"]
    assert all(r.status == "priced" for r in done), [(r.status, r.reason) for r in done]
    assert all(r.price == Decimal("12.5") for r in done)
    slots = [r.scheduled_at for r in done]
    # On the schedule: whole seconds from the first slot, each once, none overlapping.
    assert len(set(slots)) == len(slots)
    assert all((s - start) % dt.timedelta(seconds=1) == dt.timedelta(0) for s in slots)
    for before, after in itertools.pairwise(done):
        assert before.finished_at is not None
        assert after.started_at >= before.finished_at


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
    fields = definitions.validated(
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
        },
    )
    with sessions() as db:
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


def test_the_rounds_process_counts_its_rounds(
    sessions: sessionmaker[Session],
    pointed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
) -> None:
    """What the rounds process exports: rounds by status, their duration, and what was
    decided about publishing each priced round."""
    for name, price in zip(NEO_USD, ("12.30", "12.31", "12.29", "12.30"), strict=True):
        markets.set_price(name, NEO_USD[name], price)
    feed(sessions, list(NEO_USD))
    feed(sessions, list(NEO_USD), min_sources=5)  # cannot be priced by four sources
    loop = rounds.Rounds(pointed, sessions, Dispatcher(producer), parallel=2)
    try:
        with sessions() as db:
            claimed = rounds.claim_due(db, dt.datetime.now(dt.UTC), 10)
        assert len(claimed) == 2
        for item in claimed:
            loop.busy.acquire()
            loop._run(item)
    finally:
        loop.rounds.shutdown()
        loop.askers.pool.shutdown()
        loop.askers.client.close()
        loop.askers.fetcher.close()
    got = loop.metrics.registry.get_sample_value
    assert got("neosl_price_rounds_total", {"status": "priced"}) == 1
    assert got("neosl_price_rounds_total", {"status": "failed"}) == 1
    assert got("neosl_price_round_duration_seconds_count") == 2
    # The priced round's publication decision is counted, once.
    decided = {
        labels["publication"]: value
        for labels, value in (
            (s.labels, s.value)
            for family in loop.metrics.registry.collect()
            for s in family.samples
            if s.name == "neosl_price_round_publications_total"
        )
    }
    assert sum(decided.values()) == 1
