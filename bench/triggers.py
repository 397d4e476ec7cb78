"""Triggers at scale: cron fire lag with 10,000 triggers, chain catch-up with 100 triggers.

Two figures, each next to a baseline measured in the same run:

1. Cron: ``--cron`` active cron triggers, all due every minute, fired by the Procfile's
   ``scheduler-clock`` line (``--clocks`` replicas) for ``--minutes`` minutes. The fire lag of a
   trigger is the time from its slot to the commit of the pass that fired it (its
   execution queued and its job sent). The clock logs each pass; the lag of every trigger of
   a pass is taken as that pass's largest (an upper bound). The table shows p50/p99/max per
   minute, the CPU seconds the clock and PostgreSQL spent per minute, and next to it the
   baseline: the same number of executions inserted in batches of the same size with their
   jobs sent, the least work any scheduler must do. Goal: lag p99 ≤ 1 s.
2. Chain catch-up: a dev chain of ``--blocks`` blocks (``--block-ms`` each) holding
   ``--transfers`` GAS transfers to ``--chain-triggers`` recipients, each watched by a
   blockchain trigger filtering on its recipient. The follower (``neosl_scheduler.follower``,
   the code the scheduler's task runs) reads the chain from block 0 three ways, alternating
   over ``--rounds``: with the triggers, without any (the follower alone), and the bare RPC
   reads (``getblock`` plus every ``getapplicationlog``). Goal: ≥ 100 blocks/s with the
   triggers.

Everything runs on embedded servers in a temporary folder (no Docker; ``DATABASE_URL``,
``REDIS_URL`` and ``NEO_RPC_URL`` are ignored). Exits 1 only when a check fails (a
trigger fired twice or not at all, an execution missing), never because of a timing.

    uv run python bench/triggers.py [--cron 10000] [--minutes 3] [--figures 1,2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from benchstack import bench_servers
from executions import BenchError, CpuMeter, Process, procfile_commands, tree
from neo3.wallet.account import Account
from redis import Redis
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from stats import percentile

from neosl import jobs, migrate
from neosl.celery_app import make_celery
from neosl.config import Settings, load_settings
from neosl.db import make_engine
from neosl.dispatch import Dispatcher
from neosl.models import (
    ChainCursor,
    ChainEvent,
    Execution,
    Function,
    Trigger,
    TriggerEvent,
    User,
)
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import GAS_CONTRACT
from neosl.onchain.blocks import FOLLOWER_CURSOR, read_block, subscriptions
from neosl_devstack import devnet
from neosl_devstack.stack import Stack
from neosl_scheduler import follower

GOAL_LAG_P99 = 1.0
GOAL_BLOCKS_PER_SECOND = 100.0
_PASS = re.compile(r"fired (\d+) cron triggers .*lag max ([0-9.]+) s")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cron", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--clocks", type=int, default=1)
    parser.add_argument("--chain-triggers", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=3000)
    parser.add_argument("--block-ms", type=int, default=50)
    parser.add_argument("--transfers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--figures", default="1,2")
    args = parser.parse_args(argv)
    if min(args.cron, args.minutes, args.clocks, args.blocks, args.block_ms, args.rounds) < 1:
        parser.error("counts must be positive")
    return args


@dataclass
class Env:
    settings: Settings
    env: dict[str, str]
    engine: Engine
    sessions: sessionmaker[Session]
    servers: Stack
    logs: Path


@contextmanager
def environment(root: Path, block_ms: int) -> Iterator[Env]:
    with ExitStack() as stack:
        servers, env = stack.enter_context(
            bench_servers(root, durable=True, chain=True, neo_block_ms=block_ms)
        )
        settings = load_settings(env)
        engine = make_engine(settings, pool_size=4)
        stack.callback(engine.dispose)
        migrate.upgrade(engine, settings.db_dir)
        logs = root / "logs"
        logs.mkdir()
        yield Env(
            settings, env, engine, sessionmaker(bind=engine, expire_on_commit=False), servers, logs
        )


def owner(sessions: sessionmaker[Session], name: str) -> tuple[int, int]:
    with sessions() as db:
        user = User(username=name, email=f"{name}@example.com", password_hash="x")
        db.add(user)
        db.flush()
        fn = Function(user_id=user.id, name=name, source_code="function main(i) { return i }")
        db.add(fn)
        db.commit()
        return user.id, fn.id


def postgres_tree(servers: Stack) -> list[psutil.Process]:
    assert servers.postgres is not None
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "postgres" in cmd and str(servers.root) in cmd:
            found += tree(proc.pid)
    return found


# -- 1. cron --------------------------------------------------------------------------------


def figure_cron(e: Env, args: argparse.Namespace) -> None:
    user_id, fn_id = owner(e.sessions, "cron")
    now = dt.datetime.now(dt.UTC)
    first = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    if (first - now).total_seconds() < 20:
        first += dt.timedelta(minutes=1)
    with e.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO triggers (user_id, function_id, name, trigger_type, trigger_config,"
                " next_fire_at) SELECT :u, :f, 'cron-' || n, 'cron',"
                ' \'{"schedule": "* * * * *", "timezone": "UTC"}\', :first'
                " FROM generate_series(1, :count) AS n"
            ),
            {"u": user_id, "f": fn_id, "first": first, "count": args.cron},
        )
    command = procfile_commands()["scheduler-clock"]
    clocks = [Process(f"clock-{i}", command, e.env, e.logs) for i in range(args.clocks)]
    redis = Redis.from_url(e.settings.redis_url)
    try:
        for clock in clocks:
            deadline = time.monotonic() + 60
            while "clock started" not in clock.log_path.read_text(errors="replace"):
                clock.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"{clock.name} did not start:\n{clock.tail()}")
                time.sleep(0.1)
        meter = CpuMeter(
            {
                "clock": lambda: [p for c in clocks for p in tree(c.pid)],
                "postgres": lambda: postgres_tree(e.servers),
            }
        )
        print(
            f"{args.cron} triggers '* * * * *', {args.clocks} clock(s): {command}; "
            f"batch {e.settings.cron_batch}; first slot {first:%H:%M} UTC"
        )
        print(
            f"{'minute':>8} {'fired':>7} {'p50 s':>7} {'p99 s':>7} {'max s':>7} "
            f"{'clock CPU s':>12} {'pg CPU s':>9}"
        )
        all_lags: list[float] = []
        for minute in range(args.minutes):
            slot = first + dt.timedelta(minutes=minute)
            while dt.datetime.now(dt.UTC) < slot - dt.timedelta(seconds=5):
                for clock in clocks:
                    clock.check_alive()
                time.sleep(0.5)
            offsets = [c.log_path.stat().st_size for c in clocks]
            before = meter.snapshot()
            # Until the minute's slot has fired everywhere, and to the end of the minute
            # (the CPU of a whole minute, idle polling included).
            lags = wait_minute(e, clocks, offsets, slot, args.cron)
            while dt.datetime.now(dt.UTC) < slot + dt.timedelta(seconds=55):
                time.sleep(0.5)
            cpu = CpuMeter.used(before, meter.snapshot())
            redis.delete(jobs.EXECUTOR_QUEUE)  # no executor here: drop the minute's jobs
            all_lags += lags
            print(
                f"{slot:%H:%M}:00 {len(lags):>7} {percentile(lags, 0.5):>7.3f} "
                f"{percentile(lags, 0.99):>7.3f} {max(lags):>7.3f} "
                f"{cpu['clock']:>12.2f} {cpu['postgres']:>9.2f}"
            )
        check_cron(e, args.cron, args.minutes)
    finally:
        for clock in clocks:
            clock.stop()
        redis.close()
    base = baseline_inserts(e, fn_id, user_id, args.cron)
    p99 = percentile(all_lags, 0.99)
    print(
        f"\nall minutes: p50 {percentile(all_lags, 0.5):.3f} s, p99 {p99:.3f} s "
        f"(goal ≤ {GOAL_LAG_P99:g} s: {'met' if p99 <= GOAL_LAG_P99 else 'NOT met'})"
    )
    print(
        f"baseline: {args.cron} executions inserted in batches of {e.settings.cron_batch} "
        f"with their jobs sent, one process: {base:.3f} s "
        f"(the clock's p99 is {p99 / base:.2f}x that)"
    )


def wait_minute(
    e: Env, clocks: list[Process], offsets: list[int], slot: dt.datetime, count: int
) -> list[float]:
    deadline = time.monotonic() + 50
    while True:
        lags: list[float] = []
        for clock, offset in zip(clocks, offsets, strict=True):
            with clock.log_path.open("rb") as f:
                f.seek(offset)
                for line in f.read().decode(errors="replace").splitlines():
                    m = _PASS.search(line)
                    if m:
                        lags += [float(m.group(2))] * int(m.group(1))
        if len(lags) >= count:
            return lags
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(lags)} of {count} triggers fired for {slot:%H:%M}")
        for clock in clocks:
            clock.check_alive()
        time.sleep(0.2)


def check_cron(e: Env, count: int, minutes: int) -> None:
    with e.sessions() as db:
        events = db.scalar(select(func.count()).select_from(TriggerEvent)) or 0
        distinct = db.scalar(select(func.count(func.distinct(TriggerEvent.trigger_id))))
        executions = db.scalar(select(func.count()).select_from(Execution)) or 0
        skipped = db.scalar(
            select(func.count()).select_from(TriggerEvent).where(TriggerEvent.status != "fired")
        )
    if events != count * minutes or executions != events or skipped or distinct != count:
        raise BenchError(
            f"expected {count * minutes} fired events and executions, got {events} events "
            f"({skipped} not fired), {executions} executions"
        )


def baseline_inserts(e: Env, fn_id: int, user_id: int, count: int) -> float:
    dispatcher = Dispatcher(make_celery(e.settings, "bench-baseline"))
    redis = Redis.from_url(e.settings.redis_url)
    batch = e.settings.cron_batch
    started = time.perf_counter()
    for first in range(0, count, batch):
        with e.sessions() as db:
            ids = db.scalars(
                text(
                    "INSERT INTO executions (function_id, user_id, version, timeout, status,"
                    " input) SELECT :f, :u, 1, 30, 'queued', '{}'"
                    " FROM generate_series(1, :n) RETURNING id"
                ),
                {"f": fn_id, "u": user_id, "n": min(batch, count - first)},
            ).all()
            dispatcher.send_many_after_commit(
                db, jobs.RUN_EXECUTION, [{"execution_id": i} for i in ids]
            )
            db.commit()
    took = time.perf_counter() - started
    redis.delete(jobs.EXECUTOR_QUEUE)
    redis.close()
    dispatcher.app.close()
    return took


# -- 2. chain catch-up ----------------------------------------------------------------------


def figure_chain(e: Env, args: argparse.Namespace) -> None:
    assert e.servers.neo is not None
    wallet = e.servers.neo.committee_wallet_path
    password = e.servers.neo.committee_wallet_password
    user_id, fn_id = owner(e.sessions, "chain")
    recipients = [str(Account.create_new().address) for _ in range(args.chain_triggers)]
    with NeoRpc(e.settings.neo_rpc_urls) as rpc:
        sent = [
            devnet.fund(rpc, wallet, password, recipients[i % len(recipients)], 10**8, wait=False)
            for i in range(args.transfers)
        ]
        deadline = time.monotonic() + 600
        while rpc.block_count() < args.blocks or any(
            rpc.application_log(tx) is None for tx in sent[-5:]
        ):
            if time.monotonic() > deadline:
                raise BenchError("the chain did not grow in time")
            time.sleep(1)
        # The first --blocks blocks, or up to the last transfer's if sending took longer.
        last = max(rpc.transaction_height(tx) or 0 for tx in sent)
        height = max(args.blocks, last + 1)
        print(
            f"chain: its first {height} blocks ({args.block_ms} ms each), "
            f"{args.transfers} GAS transfers to {len(recipients)} recipients; "
            f"{args.chain_triggers} blockchain triggers (GAS Transfer, filter: to = one "
            "recipient each)"
        )
        with e.sessions() as db:
            for i, address in enumerate(recipients):
                db.add(
                    Trigger(
                        user_id=user_id,
                        function_id=fn_id,
                        name=f"chain-{i}",
                        trigger_type="blockchain",
                        trigger_config={
                            "contract_hash": GAS_CONTRACT,
                            "event_name": "Transfer",
                            "filters": [{"index": 1, "equals": address}],
                        },
                    )
                )
            db.commit()
        subs = subscriptions(e.settings)
        dispatcher = Dispatcher(make_celery(e.settings, "bench-chain"))
        redis = Redis.from_url(e.settings.redis_url)
        results: dict[str, list[float]] = {"with triggers": [], "no triggers": [], "RPC only": []}
        for round_ in range(args.rounds):
            order = list(results)
            if round_ % 2:
                order.reverse()
            for variant in order:
                if variant == "RPC only":
                    began = time.perf_counter()
                    for index in range(height):
                        read_block(rpc, index)
                    results[variant].append(height / (time.perf_counter() - began))
                    continue
                reset_follower(e)
                set_triggers(e, variant == "with triggers")
                began = time.perf_counter()
                passed = 0
                while passed < height:
                    done = follower.follow(
                        e.sessions,
                        rpc,
                        subs,
                        dispatcher,
                        batch=min(e.settings.follower_batch_blocks, height - passed),
                        start_block=0,
                        triggers=e.settings if variant == "with triggers" else None,
                    )
                    passed += done.blocks
                    if done.blocks == 0:
                        break
                results[variant].append(passed / (time.perf_counter() - began))
                redis.delete(jobs.EXECUTOR_QUEUE)
                if variant == "with triggers":
                    check_chain(e, args.transfers)
        redis.close()
        dispatcher.app.close()
    # Leave nothing of this figure to the next one's checks.
    reset_follower(e)
    with e.sessions() as db:
        db.execute(delete(Trigger).where(Trigger.trigger_type == "blockchain"))
        db.commit()
    rpc_only = statistics.median(results["RPC only"])
    print(f"{'variant':<15} {'blocks/s':>9} {'x RPC only':>11}")
    for variant, rates in results.items():
        rate = statistics.median(rates)
        print(f"{variant:<15} {rate:>9.0f} {rate / rpc_only:>10.2f}x")
    rate = statistics.median(results["with triggers"])
    verdict = "met" if rate >= GOAL_BLOCKS_PER_SECOND else "NOT met"
    print(f"goal ≥ {GOAL_BLOCKS_PER_SECOND:g} blocks/s with the triggers: {verdict}")


def reset_follower(e: Env) -> None:
    with e.sessions() as db:
        db.execute(delete(ChainCursor).where(ChainCursor.name == FOLLOWER_CURSOR))
        db.execute(delete(ChainEvent))
        db.execute(delete(TriggerEvent))
        db.execute(delete(Execution))
        db.commit()


def set_triggers(e: Env, active: bool) -> None:
    with e.sessions() as db:
        for t in db.scalars(select(Trigger).where(Trigger.trigger_type == "blockchain")):
            t.status = "active" if active else "paused"
        db.commit()


def check_chain(e: Env, transfers: int) -> None:
    with e.sessions() as db:
        fired = db.scalar(
            select(func.count()).select_from(TriggerEvent).where(TriggerEvent.status == "fired")
        )
        executions = db.scalar(select(func.count()).select_from(Execution))
    if fired != transfers or executions != transfers:
        raise BenchError(f"{transfers} transfers fired {fired} triggers, {executions} executions")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    print(
        f"cron={args.cron} minutes={args.minutes} clocks={args.clocks} "
        f"chain-triggers={args.chain_triggers} blocks={args.blocks} block-ms={args.block_ms} "
        f"transfers={args.transfers} rounds={args.rounds}"
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp,
            environment(Path(tmp), args.block_ms) as e,
        ):
            # The chain first, while it is young: its transfers land in the blocks read.
            if "2" in args.figures:
                print("\n== 2. chain catch-up")
                figure_chain(e, args)
            if "1" in args.figures:
                print("\n== 1. cron fire lag")
                figure_cron(e, args)
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
