"""Price rounds are paid for by their feed's owner before any source is asked: a fee per
round plus one per source (type ``pricefeed``, reference ``round:<id>``: once, whatever
number of times the round's message comes). An owner who cannot pay gets a failed round,
no request to any source, and a feed paused until the clock sees the owner's default account
cover a round again; a feed its owner paused stays paused. Creating and resuming a feed need
a round's worth, and a tenant has at most ``NSL_FEEDS_PER_TENANT`` feeds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.celery_app import ServiceApp
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.gas import ledger
from neosl.models import GasAccount, PriceFeed, PriceRound, Transaction
from neosl.pricefeeds import billing, catalog
from neosl_api.app import create_app
from neosl_api.services import pricefeeds
from neosl_devstack.markets import FakeMarkets
from neosl_pricefeed import clock, pricing, worker
from neosl_pricefeed.metrics import RoundMetrics
from neosl_pricefeed.sources.base import new_client
from tests import factories
from tests.api.test_basics import assert_error
from tests.clirun import run_cli
from tests.gas.test_api import add_account, fund, tenant
from tests.platform.test_jobs_after_commit import waiting
from tests.waiting import wait_until

NEO_USD = {"binance": "NEOUSDT", "okx": "NEO-USDT", "kucoin": "NEO-USDT", "gate": "NEO_USDT"}
ROUND_FEE = Decimal("0.001")
SOURCE_FEE = Decimal("0.0001")
FEED = {
    "asset_pair": "NEO/USD",
    "frequency": 60,
    "sources": ["binance", "okx", "kucoin"],
    "usdt_as_usd": True,
}
# A round of FEED (three sources).
FEED_ROUND = ROUND_FEE + 3 * SOURCE_FEE


@pytest.fixture
def markets() -> Iterator[FakeMarkets]:
    with FakeMarkets() as fake:
        for name, symbol in NEO_USD.items():
            fake.set_price(name, symbol, "12.5")
        yield fake


@pytest.fixture
def billed(settings: Settings, markets: FakeMarkets) -> Settings:
    urls = tuple((name, markets.base_url(name)) for name in catalog.NAMES)
    return dataclasses.replace(
        settings,
        price_source_urls=urls,
        price_source_timeout_seconds=1.0,
        pricefeed_round_fee=ROUND_FEE,
        pricefeed_source_fee=SOURCE_FEE,
    )


def owner(sessions: sessionmaker[Session], gas: str | None) -> int:
    """A new user; with a default gas account holding ``gas`` unless it is None."""
    with sessions() as db:
        user = factories.make_user(db)
        if gas is not None:
            account = factories.make_account(db, user)
            if Decimal(gas) > 0:
                factories.credit(db, account, gas)
        db.commit()
        return user.id


def deposit(sessions: sessionmaker[Session], user_id: int, gas: str) -> None:
    with sessions() as db:
        account = db.scalars(
            select(GasAccount).where(GasAccount.user_id == user_id, GasAccount.is_default)
        ).one()
        factories.credit(db, account, gas)
        db.commit()


def new_feed(
    sessions: sessionmaker[Session], user_id: int, sources: list[str], *, public: bool = False
) -> int:
    with sessions() as db:
        row = PriceFeed(
            user_id=user_id,
            asset_pair="NEO/USD",
            frequency=60,
            sources=[{"name": s} for s in sources],
            aggregation="median",
            min_sources=1,
            heartbeat=3600,
            public=public,
            next_round_at=dt.datetime.now(dt.UTC),
        )
        db.add(row)
        db.commit()
        return row.id


def queue_due(sessions: sessionmaker[Session], producer: Celery) -> dict[int, int]:
    """Queue the due feeds' rounds as the clock does: {feed id: round id}."""
    with sessions() as db:
        scheduled = clock.claim_due(db, Dispatcher(producer), dt.datetime.now(dt.UTC), 50)
    return {s.feed_id: s.round_id for s in scheduled}


def run(
    sessions: sessionmaker[Session], settings: Settings, producer: Celery, round_id: int
) -> str:
    """Run a queued round as the pricefeed worker does."""
    with (
        new_client() as client,
        pricing.generic_fetcher(settings) as fetcher,
        ThreadPoolExecutor(8) as pool,
    ):
        return pricing.run_round(
            sessions,
            settings,
            Dispatcher(producer),
            pricing.Askers(client, fetcher, pool),
            RoundMetrics(),
            round_id,
        )


def round_charges(sessions: sessionmaker[Session], user_id: int) -> list[Transaction]:
    with sessions() as db:
        return list(
            db.scalars(
                select(Transaction)
                .where(Transaction.user_id == user_id, Transaction.type == "pricefeed")
                .order_by(Transaction.id)
            )
        )


def balance(sessions: sessionmaker[Session], user_id: int) -> Decimal | None:
    with sessions() as db:
        return db.scalar(
            select(GasAccount.balance).where(GasAccount.user_id == user_id, GasAccount.is_default)
        )


def load(sessions: sessionmaker[Session], model: Any, row_id: int) -> Any:
    with sessions() as db:
        return db.get_one(model, row_id)


def verify(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        assert ledger.verify(db) == []


# -- rounds ---------------------------------------------------------------------------------


@pytest.fixture
def worker_app(billed: Settings) -> Iterator[ServiceApp]:
    app = worker.create_worker_app(billed)
    yield app
    app.close_resources()
    app.close()


def task_runs(app: ServiceApp) -> float:
    runs = app.task_metrics.registry.get_sample_value(
        "neosl_task_runs_total", {"task": jobs.RUN_ROUND.name, "outcome": "succeeded"}
    )
    return runs or 0.0


@pytest.mark.celery
def test_a_round_delivered_twice_is_charged_once_to_the_owner_of_a_public_feed(
    sessions: sessionmaker[Session],
    billed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
    worker_app: ServiceApp,
) -> None:
    """Its message delivered twice, at the same time, to a worker of two threads: one
    round, one charge of the round fee plus a fee per source, each source asked once. A
    public feed is paid by its owner, the operator, like any other."""
    operator = owner(sessions, "1")
    feed_id = new_feed(sessions, operator, ["binance", "okx"], public=True)
    (round_id,) = queue_due(sessions, producer).values()
    (message,) = redis_client.lrange(jobs.PRICEFEED_QUEUE, 0, -1)
    redis_client.lpush(jobs.PRICEFEED_QUEUE, message)
    assert [kw["round_id"] for _, kw in waiting(redis_client, jobs.PRICEFEED_QUEUE)] == [
        round_id,
        round_id,
    ]
    with start_worker(
        worker_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=[jobs.PRICEFEED_QUEUE],
    ):
        wait_until(lambda: task_runs(worker_app) == 2, "both deliveries run")
    done = load(sessions, PriceRound, round_id)
    assert (done.status, done.price) == ("priced", Decimal("12.5"))
    cost = ROUND_FEE + 2 * SOURCE_FEE
    (charge,) = round_charges(sessions, operator)
    assert (charge.reference, charge.amount, charge.status) == (
        f"round:{round_id}",
        cost,
        "confirmed",
    )
    assert balance(sessions, operator) == Decimal(1) - cost
    assert (len(markets.asked("binance")), len(markets.asked("okx"))) == (1, 1)
    # A third delivery, later: nothing to run, nothing charged.
    assert run(sessions, billed, producer, round_id) == pricing.SKIPPED
    assert len(round_charges(sessions, operator)) == 1
    assert load(sessions, PriceFeed, feed_id).status == "active"
    verify(sessions)


def test_a_round_its_owner_cannot_pay_asks_no_source_and_pauses_the_feed(
    sessions: sessionmaker[Session],
    billed: Settings,
    markets: FakeMarkets,
    producer: Celery,
    redis_client: Redis,
) -> None:
    """Short of a round (four sources: 0.0014 GAS) by the smallest amount, or without a
    gas account: the round fails with the reason, no source hears of it, nothing is
    charged, and the feed is paused for want of funds. The clock resumes it once the owner
    can pay, and the next round runs and is charged."""
    short = owner(sessions, str(ROUND_FEE + 4 * SOURCE_FEE - Decimal("0.00000001")))
    without = owner(sessions, None)
    short_feed = new_feed(sessions, short, list(NEO_USD))
    without_feed = new_feed(sessions, without, list(NEO_USD))
    rounds = queue_due(sessions, producer)
    for feed_id in (short_feed, without_feed):
        assert run(sessions, billed, producer, rounds[feed_id]) == "failed"
        failed = load(sessions, PriceRound, rounds[feed_id])
        assert failed.status == "failed"
        assert (failed.reason or "").startswith("insufficient_funds: the round costs 0.0014 GAS")
        assert (failed.price, failed.source_data, failed.finished_at is not None) == (
            None,
            [],
            True,
        )
        paused = load(sessions, PriceFeed, feed_id)
        assert (paused.status, paused.paused_reason) == ("paused", "insufficient_funds")
    assert markets.requests == []
    assert round_charges(sessions, short) == round_charges(sessions, without) == []
    assert balance(sessions, short) == Decimal("0.00139999")
    # Paused: the clock queues no round of them, and has nothing to resume yet.
    assert queue_due(sessions, producer) == {}
    with sessions() as db:
        assert clock.resume_funded(db, billed, dt.datetime.now(dt.UTC)) == []
    verify(sessions)

    # A deposit: the clock's next pass resumes the feed and queues its round at once.
    deposit(sessions, short, "0.00000001")
    tick = clock.Clock(billed, sessions, Dispatcher(producer))
    tick.next_listings = time.monotonic() + 3600  # market lists are not this test's
    redis_client.delete(jobs.PRICEFEED_QUEUE)
    tick.tick()
    resumed = load(sessions, PriceFeed, short_feed)
    assert (resumed.status, resumed.paused_reason) == ("active", None)
    assert load(sessions, PriceFeed, without_feed).status == "paused"
    ((_, sent),) = waiting(redis_client, jobs.PRICEFEED_QUEUE)
    assert run(sessions, billed, producer, sent["round_id"]) == "priced"
    (charge,) = round_charges(sessions, short)
    assert (charge.reference, charge.amount) == (
        f"round:{sent['round_id']}",
        ROUND_FEE + 4 * SOURCE_FEE,
    )
    assert balance(sessions, short) == 0
    assert len(markets.requests) == 4
    # The clock resumes at most every RESUME_SECONDS: the next tick does not look again.
    assert tick.next_resume > 0
    verify(sessions)


def test_a_feed_its_owner_paused_is_never_resumed_by_the_clock(
    sessions: sessionmaker[Session], billed: Settings, producer: Celery
) -> None:
    """Paused for want of funds, then paused by its owner too: the owner's pause wins, even
    once the owner can pay. So does a plain pause by a funded owner."""
    poor = owner(sessions, "0")
    feed_id = new_feed(sessions, poor, ["binance"])
    rounds = queue_due(sessions, producer)
    assert run(sessions, billed, producer, rounds[feed_id]) == "failed"
    assert load(sessions, PriceFeed, feed_id).paused_reason == "insufficient_funds"
    with sessions() as db:
        pricefeeds.set_status(db, billed, poor, feed_id, "paused")
    rich = owner(sessions, "1")
    rich_feed = new_feed(sessions, rich, ["binance"])
    with sessions() as db:
        pricefeeds.set_status(db, billed, rich, rich_feed, "paused")
    deposit(sessions, poor, "1")
    with sessions() as db:
        assert clock.resume_funded(db, billed, dt.datetime.now(dt.UTC)) == []
    for paused in (feed_id, rich_feed):
        row = load(sessions, PriceFeed, paused)
        assert (row.status, row.paused_reason) == ("paused", "owner")
    # Only its owner resumes it.
    with sessions() as db:
        assert pricefeeds.set_status(db, billed, poor, feed_id, "active").status == "active"
    verify(sessions)


def test_free_rounds_charge_nothing_and_need_no_account(
    sessions: sessionmaker[Session], settings: Settings, markets: FakeMarkets, producer: Celery
) -> None:
    """With no round fees (the production default) nothing changes for a feed's owner."""
    urls = tuple((name, markets.base_url(name)) for name in catalog.NAMES)
    free = dataclasses.replace(settings, price_source_urls=urls)
    assert billing.round_cost(free, 16) == 0
    nobody = owner(sessions, None)
    feed_id = new_feed(sessions, nobody, ["binance"])
    rounds = queue_due(sessions, producer)
    assert run(sessions, free, producer, rounds[feed_id]) == "priced"
    assert round_charges(sessions, nobody) == []


# -- creating and resuming feeds ------------------------------------------------------------


@pytest.fixture
def billed_client(
    billed: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> FlaskClient:
    return create_app(
        billed, session_factory=session_factory, redis=redis_client, sandbox=sandbox
    ).test_client()


def test_creating_or_resuming_a_feed_needs_a_rounds_worth(
    billed_client: FlaskClient, db: Session
) -> None:
    client = billed_client
    h = tenant(client)
    user_id = client.get("/v1/me", headers=h).get_json()["id"]
    error = assert_error(
        client.post("/v1/price-feeds", json=FEED, headers=h), 402, "payment_required"
    )
    assert "0.0013 GAS" in error["message"], error["message"]
    assert "balance" in error["details"]
    account = add_account(client, h)
    fund(db, account["id"], str(FEED_ROUND - Decimal("0.00000001")))
    assert_error(client.post("/v1/price-feeds", json=FEED, headers=h), 402, "payment_required")
    assert db.scalar(select(func.count()).where(PriceFeed.user_id == user_id)) == 0

    fund(db, account["id"], "0.00000001")
    created = client.post("/v1/price-feeds", json=FEED, headers=h)
    assert created.status_code == 201, created.get_json()
    feed_id = created.get_json()["id"]
    assert created.get_json()["status"] == "active"
    # Creating charged nothing: rounds are charged when they run.
    assert db.get_one(GasAccount, account["id"]).balance == FEED_ROUND

    paused = client.post(f"/v1/price-feeds/{feed_id}/pause", headers=h)
    assert paused.get_json()["status"] == "paused"
    # The balance is spent elsewhere: resuming is refused, the feed stays paused.
    assert ledger.charge(db, user_id, "function", FEED_ROUND, "spent elsewhere").ok
    db.commit()
    refused = client.post(f"/v1/price-feeds/{feed_id}/resume", headers=h)
    assert "0.0013 GAS" in assert_error(refused, 402, "payment_required")["message"]
    assert client.get(f"/v1/price-feeds/{feed_id}", headers=h).get_json()["status"] == "paused"
    fund(db, account["id"], "1")
    resumed = client.post(f"/v1/price-feeds/{feed_id}/resume", headers=h)
    assert resumed.status_code == 200, resumed.get_json()
    assert resumed.get_json()["status"] == "active"
    assert ledger.verify(db) == []


def test_feeds_per_tenant_hold_under_concurrent_creates(
    settings: Settings,
    sessions: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    limited = dataclasses.replace(settings, feeds_per_tenant=3)
    app = create_app(limited, session_factory=sessions, redis=redis_client, sandbox=sandbox)
    h = tenant(app.test_client())
    statuses: list[int] = []
    errors: list[dict[str, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def create() -> None:
        client = app.test_client()
        start.wait()
        resp = client.post("/v1/price-feeds", json=FEED, headers=h)
        with lock:
            statuses.append(resp.status_code)
            if resp.status_code != 201:
                errors.append(assert_error(resp, 409, "conflict"))

    threads = [threading.Thread(target=create) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] * 3 + [409] * 7
    assert all("NSL_FEEDS_PER_TENANT" in e["message"] for e in errors), errors
    user_id = app.test_client().get("/v1/me", headers=h).get_json()["id"]
    with sessions() as db:
        assert db.scalar(select(func.count()).where(PriceFeed.user_id == user_id)) == 3
    # Another tenant has its own allowance.
    other = tenant(app.test_client(), "bob")
    assert app.test_client().post("/v1/price-feeds", json=FEED, headers=other).status_code == 201


@pytest.mark.slow
def test_an_operators_public_feed_waits_for_its_owner_to_pay(
    server_env: dict[str, str], sessions: sessionmaker[Session], billed: Settings
) -> None:
    """``neosl feeds create --public`` for an operator who cannot pay a round yet (as on the
    dev stack's first start, before its deposit): created paused for want of funds, and
    resumed by the clock once the operator can pay. A private feed is refused."""
    with sessions() as db:
        operator = factories.make_user(db, "operator")
        factories.make_account(db, operator)
        db.commit()
        operator_id = operator.id
    env = {
        **server_env,
        "NSL_PRICEFEED_ROUND_FEE": str(ROUND_FEE),
        "NSL_PRICEFEED_SOURCE_FEE": str(SOURCE_FEE),
    }
    args = ["feeds", "create", "--owner", "operator", "--pair", "NEO/USD", "--frequency", "60"]
    made = run_cli(env, *args, "--sources", "binance,okx", "--public", "--usdt-as-usd")
    assert made.returncode == 0, made.stderr
    refused = run_cli(env, *args, "--sources", "binance,okx", "--usdt-as-usd")
    assert refused.returncode == 1
    assert "cannot pay for a round" in refused.stderr
    with sessions() as db:
        feed = db.scalars(select(PriceFeed).where(PriceFeed.user_id == operator_id)).one()
    assert (feed.public, feed.status, feed.paused_reason) == (True, "paused", "insufficient_funds")
    deposit(sessions, operator_id, "1")
    with sessions() as db:
        assert clock.resume_funded(db, billed, dt.datetime.now(dt.UTC)) == [feed.id]
    assert load(sessions, PriceFeed, feed.id).status == "active"
