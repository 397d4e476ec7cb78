"""Price rounds: one round next to its slowest source; 100 feeds at the minimum frequency.

Two figures, each next to a baseline measured in the same run, against a local server that
answers like each market-data API (``neosl_devstack.markets``):

1. One round over 8 sources, one of them answering after ``--slow`` seconds: the round's
   time (every source asked at once, the outlier rule, the aggregation) next to one GET of
   the slow source alone, alternating, ``--rounds`` times. Goal: the round within the slow
   source's latency + 50 ms (the timeout caps it).
2. ``--feeds`` feeds at ``--frequency`` seconds (10, the default minimum), each over 4 of
   the sources, their slots spread over the period (``--aligned``: all due at the same
   instant), queued by the Procfile's ``pricefeed-clock`` line and run by its ``pricefeed``
   line (the worker) for ``--seconds``: the start lag of every round (the worker starting
   it minus its slot) p50/p99, and the CPU seconds the clock, the worker and PostgreSQL
   spent per second, next to the same processes idle (no feed due) as the baseline. Goal:
   start lag p99 ≤ 1 s.

Embedded PostgreSQL and Redis in a temporary folder (no Neo node is needed). Exits 1 only
when a check fails (a round not priced, a slot run twice), never because of a timing.

    uv run python bench/pricefeeds.py [--slow 0.3] [--rounds 20] [--feeds 100]
        [--frequency 10] [--seconds 40] [--aligned]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from benchstack import bench_servers
from celery.exceptions import TimeoutError as CeleryTimeout
from executions import BenchError, CpuMeter, Process, procfile_commands, tree
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from stats import percentile
from triggers import postgres_tree

from neosl import jobs, migrate
from neosl.celery_app import make_celery
from neosl.config import Settings, load_settings
from neosl.db import make_engine
from neosl.models import PriceFeed, PriceRound, User
from neosl.pricefeeds import catalog
from neosl_devstack.markets import FakeMarkets
from neosl_devstack.stack import Stack
from neosl_pricefeed import pricing
from neosl_pricefeed.clock import IN_PROGRESS
from neosl_pricefeed.sources import REGISTRY
from neosl_pricefeed.sources.base import new_client

GOAL_EXTRA_MS = 50.0
GOAL_LAG_P99 = 1.0
# Every one of them lists BTC/USD (NEO is not on all of them).
EIGHT = ["binance", "bitfinex", "bybit", "coinbase", "coingecko", "gate", "kraken", "okx"]
FOUR = ["binance", "okx", "kucoin", "gate"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--frequency", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="all feeds due at the same instant (default: spread over the period)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="pricefeed worker processes (the Procfile's line, started this many times)",
    )
    parser.add_argument("--figures", default="1,2")
    args = parser.parse_args(argv)
    if (
        min(args.rounds, args.feeds, args.frequency, args.seconds, args.workers) < 1
        or args.slow <= 0
    ):
        parser.error("counts and --slow must be positive")
    return args


def list_prices(markets: FakeMarkets) -> None:
    for name in catalog.NAMES:
        source = REGISTRY[name]
        for pair in ("BTC/USD", "NEO/USD"):
            if source.serves(pair):
                markets.set_price(name, source.symbol(pair), "12.34")


def figure_round(settings: Settings, markets: FakeMarkets, args: argparse.Namespace) -> None:
    slow = EIGHT[-1]
    markets.delay(slow, args.slow)
    claimed = pricing.Claimed(0, 0, "BTC/USD", [{"name": n} for n in EIGHT], "median", 8, _now(), 0)
    round_ms: list[float] = []
    alone_ms: list[float] = []
    url, params = REGISTRY[slow].request(REGISTRY[slow].symbol("BTC/USD"), markets.base_url(slow))
    with (
        new_client() as client,
        pricing.generic_fetcher(settings) as fetcher,
        ThreadPoolExecutor(16) as pool,
    ):
        askers = pricing.Askers(client, fetcher, pool)
        for i in range(args.rounds + 1):
            for variant in ("round", "alone") if i % 2 else ("alone", "round"):
                began = time.perf_counter()
                if variant == "round":
                    answers = pricing.ask_all(askers, settings, "BTC/USD", claimed.sources)
                    price, reason, _ = pricing.price_round(claimed, answers)
                    if price is None:
                        raise BenchError(f"a round was not priced: {reason}")
                else:
                    client.get(url, params=params, timeout=10).raise_for_status()
                took = (time.perf_counter() - began) * 1000
                if i:  # the first pair warms up
                    (round_ms if variant == "round" else alone_ms).append(took)
    markets.delay(slow, 0.0)
    print(f"8 sources, {slow} answering after {args.slow * 1000:.0f} ms; {args.rounds} rounds")
    print(f"{'':<30} {'p50 ms':>8} {'p99 ms':>8}")
    for label, values in (
        ("slow source alone (one GET)", alone_ms),
        ("round (8 sources)", round_ms),
    ):
        print(f"{label:<30} {percentile(values, 0.5):>8.1f} {percentile(values, 0.99):>8.1f}")
    extra = statistics.median(round_ms) - statistics.median(alone_ms)
    verdict = "met" if extra <= GOAL_EXTRA_MS else "NOT met"
    print(
        f"round minus slow source (medians): {extra:+.1f} ms (goal ≤ {GOAL_EXTRA_MS:g}: {verdict})"
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def figure_feeds(
    env: dict[str, str],
    settings: Settings,
    sessions: sessionmaker[Session],
    servers: Stack,
    logs: Path,
    args: argparse.Namespace,
) -> None:
    commands = procfile_commands()
    clock = Process("pricefeed-clock", commands["pricefeed-clock"], env, logs)
    workers = [
        Process(f"pricefeed-{i}", commands["pricefeed"], env, logs) for i in range(args.workers)
    ]
    producer = make_celery(settings, "bench")
    try:
        deadline = time.monotonic() + 60
        while "pricefeed clock started" not in clock.log_path.read_text(errors="replace"):
            clock.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"the clock did not start:\n{clock.tail()}")
            time.sleep(0.1)
        ping = jobs.PING_JOBS[jobs.PRICEFEED_QUEUE]
        while True:
            for worker in workers:
                worker.check_alive()
            try:
                producer.send_task(ping.name, queue=ping.queue).get(timeout=5)
                break
            except CeleryTimeout as exc:
                if time.monotonic() > deadline:
                    raise BenchError(f"the worker did not start:\n{workers[0].tail()}") from exc
        meter = CpuMeter(
            {
                "clock": lambda: tree(clock.pid),
                "worker": lambda: [p for w in workers for p in tree(w.pid)],
                "postgres": lambda: postgres_tree(servers),
            }
        )
        before = meter.snapshot()
        time.sleep(5)
        idle = CpuMeter.used(before, meter.snapshot())
        start = _now().replace(microsecond=0) + dt.timedelta(seconds=2)
        with sessions() as db:
            user = User(username="bench", email="bench@example.com", password_hash="x")
            db.add(user)
            db.flush()
            for i in range(args.feeds):
                offset = 0.0 if args.aligned else args.frequency * i / args.feeds
                db.add(
                    PriceFeed(
                        user_id=user.id,
                        asset_pair="NEO/USD",
                        frequency=args.frequency,
                        sources=[{"name": n} for n in FOUR],
                        aggregation="median",
                        min_sources=len(FOUR),
                        heartbeat=3600,
                        next_round_at=start + dt.timedelta(seconds=offset),
                    )
                )
            db.commit()
        while _now() < start:
            time.sleep(0.05)
        before = meter.snapshot()
        time.sleep(args.seconds)
        busy = CpuMeter.used(before, meter.snapshot())
        with sessions() as db:
            db.query(PriceFeed).update({"status": "paused"})
            db.commit()
        time.sleep(2)
        clock.check_alive()
        for worker in workers:
            worker.check_alive()
    finally:
        clock.stop()
        for worker in workers:
            worker.stop()
        producer.close()
    with sessions() as db:
        done = db.execute(
            select(
                PriceRound.scheduled_at,
                PriceRound.started_at,
                PriceRound.finished_at,
                PriceRound.status,
            ).where(PriceRound.status.not_in(IN_PROGRESS))
        ).all()
        per_slot = db.execute(
            select(PriceRound.feed_id, PriceRound.scheduled_at, func.count())
            .group_by(PriceRound.feed_id, PriceRound.scheduled_at)
            .having(func.count() > 1)
        ).all()
    if per_slot:
        raise BenchError(f"{len(per_slot)} slots ran more than once")
    failed = [r for r in done if r.status != "priced"]
    if failed:
        raise BenchError(f"{len(failed)} of {len(done)} rounds were not priced")
    lags = [(r.started_at - r.scheduled_at).total_seconds() for r in done]
    expected = args.feeds * args.seconds / args.frequency
    print(
        f"{args.feeds} feeds every {args.frequency} s "
        f"({'all due at once' if args.aligned else 'spread over the period'}), 4 sources each, "
        f"{args.seconds} s, {args.workers} worker process(es): "
        f"{len(done)} rounds ({len(done) / expected:.0%} of the slots)"
    )
    print(
        f"start lag: p50 {percentile(lags, 0.5):.3f} s, "
        f"p99 {percentile(lags, 0.99):.3f} s, max {max(lags):.3f} s"
    )
    took = [(r.finished_at - r.started_at).total_seconds() for r in done]
    print(
        f"round, start to finish: p50 {percentile(took, 0.5):.3f} s, "
        f"p99 {percentile(took, 0.99):.3f} s"
    )
    print(f"{'CPU s per s':<16} {'idle':>6} {'busy':>6}")
    for part in ("clock", "worker", "postgres"):
        print(f"{part:<16} {idle[part] / 5:>6.3f} {busy[part] / args.seconds:>6.3f}")
    p99 = percentile(lags, 0.99)
    print(f"goal start lag p99 ≤ {GOAL_LAG_P99:g} s: {'met' if p99 <= GOAL_LAG_P99 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    print(
        f"slow={args.slow}s rounds={args.rounds} feeds={args.feeds} "
        f"frequency={args.frequency}s seconds={args.seconds}"
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp,
            ExitStack() as stack,
            FakeMarkets() as markets,
        ):
            # Nothing here talks to a chain.
            root = Path(tmp)
            servers, env = stack.enter_context(bench_servers(root, durable=True))
            env["NSL_PRICEFEED_MIN_FREQUENCY_SECONDS"] = "1"
            for name in catalog.NAMES:
                env[f"NSL_PRICE_SOURCE_{name.upper()}_URL"] = markets.base_url(name)
            list_prices(markets)
            settings = load_settings(env)
            engine = make_engine(settings, pool_size=2)
            stack.callback(engine.dispose)
            migrate.upgrade(engine, settings.db_dir)
            sessions = sessionmaker(bind=engine, expire_on_commit=False)
            logs = root / "logs"
            logs.mkdir()
            if "1" in args.figures:
                print("\n== 1. one round next to its slowest source")
                figure_round(settings, markets, args)
            if "2" in args.figures:
                print("\n== 2. many feeds at the minimum frequency")
                figure_feeds(env, settings, sessions, servers, logs, args)
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
