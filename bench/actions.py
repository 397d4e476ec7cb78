"""On-chain actions through the relay, next to sending the same invocations directly.

Usage: python bench/actions.py [--actions 100] [--block-ms 1000] [--rounds 2]

Starts embedded PostgreSQL, Redis and a one-validator Neo N3 node (blocks every
``--block-ms``), the gasbank worker and the scheduler (whose beat runs the relay's
settlement pass every NSL_FOLLOWER_INTERVAL_MS) with the Procfile's lines, and deploys two
Consumer contracts: one written by the tenant's relay signer, one by a plain account. Each
round, alternating which goes first:

- relay: ``--actions`` actions queued at once (one transaction, as a burst of executions'
  ``neo.invoke`` would), until every one is ``confirmed`` in the database;
- direct: the same number of ``set`` calls test-invoked, signed and sent one after another
  with neo-mamba from one funded account, until every one is in a block.

It prints, per variant, the seconds from the first submission to the last confirmation and
the blocks: the last transaction's block minus the height when the round began. Goal: the
relay within one block of the direct send. Exits 1 if a check fails (an action not
confirmed, a direct transaction that did not HALT, a ledger mismatch).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchstack import bench_servers
from executions import BenchError, Process, procfile_commands, wait_until
from neo3.network.payloads.transaction import Transaction
from neo3.wallet.account import Account
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from neosl import jobs, migrate
from neosl.celery_app import make_celery
from neosl.config import load_settings
from neosl.db import make_engine
from neosl.dispatch import Dispatcher
from neosl.gas import ledger
from neosl.models import GasAccount, NeoAction, User
from neosl.neo.addresses import address_to_script_hash
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import signed_transaction
from neosl.onchain import actions, signers
from neosl_devstack import contracts, devnet
from neosl_devstack.stack import Stack
from neosl_gasbank.invocations import call_script

GAS = 10**8
GOAL_BLOCKS = 1
POLL_SECONDS = 0.05


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--block-ms", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if min(args.actions, args.block_ms, args.rounds) < 1:
        parser.error("--actions, --block-ms and --rounds must be positive")
    return args


def deploy(rpc: NeoRpc, stack: Stack, owner: str) -> str:
    assert stack.neo is not None
    nef, manifest = contracts.artefact("consumer")
    renamed = {**manifest, "name": f"Consumer-{secrets.token_hex(4)}"}
    return devnet.deploy(
        rpc,
        stack.neo.committee_wallet_path,
        stack.neo.committee_wallet_password,
        nef,
        renamed,
        address_to_script_hash(owner),
    )


def height(rpc: NeoRpc) -> int:
    return rpc.block_count() - 1


def run_relay(
    sessions: sessionmaker[Any],
    dispatcher: Dispatcher,
    rpc: NeoRpc,
    user_id: int,
    contract: str,
    n: int,
    tag: str,
    timeout: float,
) -> tuple[float, int]:
    start_height = height(rpc)
    began = time.perf_counter()
    with sessions() as db:
        ids = [
            actions.queue(
                db,
                dispatcher,
                user_id,
                actions.check(contract, "set", [f"{tag}-{i}", "v"]),
                # The burst is what is measured, not the tenant's in-flight limit.
                limit=n,
            ).id
            for i in range(n)
        ]
        db.commit()
    deadline = began + timeout
    signed_at: float | None = None
    while True:
        with sessions() as db:
            rows = db.execute(
                select(NeoAction.status, NeoAction.block_index, NeoAction.failure_reason).where(
                    NeoAction.id.in_(ids)
                )
            ).all()
        failed = [r for r in rows if r.status == "failed"]
        if failed:
            raise BenchError(f"{len(failed)} actions failed, e.g. {failed[0].failure_reason}")
        if signed_at is None and all(r.status != "queued" for r in rows):
            signed_at = time.perf_counter() - began
            print(f"    relay: all {n} signed and sent after {signed_at:.2f} s", flush=True)
        if all(r.status == "confirmed" for r in rows):
            seconds = time.perf_counter() - began
            return seconds, max(r.block_index for r in rows) - start_height
        if time.perf_counter() > deadline:
            done = sum(r.status == "confirmed" for r in rows)
            raise BenchError(f"relay: {done} of {n} confirmed after {timeout:g} s")
        time.sleep(POLL_SECONDS)


def run_direct(
    rpc: NeoRpc, account: Account, contract: str, n: int, tag: str, timeout: float
) -> tuple[float, int]:
    sender = address_to_script_hash(str(account.address))
    signer = [{"account": f"0x{sender}", "scopes": "CalledByEntry"}]
    magic = rpc.network_magic()

    def sign(tx: Transaction, _magic: int) -> None:
        account.sign_tx(tx, magic)

    start_height = height(rpc)
    began = time.perf_counter()
    hashes: list[str] = []
    for i in range(n):
        script = call_script(contract, "set", [f"{tag}-{i}", "v"])
        test = rpc.invoke_script(script, signer)
        if test.get("state") != "HALT":
            raise BenchError(
                f"direct: test invocation {test.get('state')}: {test.get('exception')}"
            )
        tx = signed_transaction(
            rpc, sender, sign, script, system_fee=int(test["gasconsumed"]), valid_for_blocks=100
        )
        rpc.send_raw_transaction(tx.to_array())
        hashes.append(f"0x{tx.hash()}")
    deadline = began + timeout
    pending = set(hashes)
    last_block = start_height
    while pending:
        for tx_hash in list(pending):
            log = rpc.application_log(tx_hash)
            if log is None:
                continue
            if log["executions"][0]["vmstate"] != "HALT":
                raise BenchError(f"direct: {tx_hash} did not HALT")
            block = rpc.transaction_height(tx_hash)
            assert block is not None
            last_block = max(last_block, block)
            pending.discard(tx_hash)
        if pending and time.perf_counter() > deadline:
            raise BenchError(f"direct: {len(pending)} of {n} not in a block after {timeout:g} s")
        if pending:
            time.sleep(POLL_SECONDS)
    return time.perf_counter() - began, last_block - start_height


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    print(f"actions={args.actions} block-ms={args.block_ms} rounds={args.rounds}")
    with tempfile.TemporaryDirectory(prefix="neosl-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        servers, env = stack.enter_context(
            bench_servers(root, durable=False, chain=True, neo_block_ms=args.block_ms)
        )
        settings = load_settings(env)
        engine = make_engine(settings, pool_size=2)
        stack.callback(engine.dispose)
        migrate.upgrade(engine, settings.db_dir)
        sessions = sessionmaker(bind=engine, expire_on_commit=False)
        redis = Redis.from_url(settings.redis_url)
        stack.callback(redis.close)
        producer = make_celery(settings, "bench")
        rpc = stack.enter_context(NeoRpc(settings.neo_rpc_urls))
        assert servers.neo is not None
        wallet, password = servers.neo.committee_wallet_path, servers.neo.committee_wallet_password

        commands = procfile_commands()
        logs = root / "logs"
        logs.mkdir()
        for name, queue in (("gasbank", jobs.GASBANK_QUEUE), ("scheduler", jobs.SCHEDULER_QUEUE)):
            proc = Process(name, commands[name], env, logs)
            stack.callback(proc.stop)
            ping = jobs.PING_JOBS[queue]
            wait_until(
                f"the {name}",
                lambda ping=ping: bool(
                    producer.send_task(ping.name, queue=ping.queue).get(timeout=30)
                ),
                proc,
            )
        print(f"gasbank:   {commands['gasbank']}")
        print(
            f"scheduler: {commands['scheduler']}  (settlement pass every "
            f"{settings.follower_interval * 1000:g} ms)"
        )

        hot = str(Account.from_wif(settings.hot_wallet_wif or "").address)
        devnet.fund(rpc, wallet, password, hot, 1000 * GAS)
        direct = Account.create_new()
        devnet.fund(rpc, wallet, password, str(direct.address), 1000 * GAS)
        with sessions() as db:
            user = User(username="bench", email="bench@example.com", password_hash="x")
            db.add(user)
            db.flush()
            account = GasAccount(
                user_id=user.id,
                address=str(Account.create_new().address),
                is_default=True,
                verified_at=func.now(),
            )
            db.add(account)
            db.flush()
            ledger.credit_deposit(
                db,
                tx_hash="0x" + secrets.token_hex(32),
                notification_index=0,
                block_index=0,
                from_address=account.address,
                amount=Decimal(1000),
            )
            signer = signers.get_or_create(db, user.id, settings.relay_public_key)
            db.commit()
            user_id, signer_address = user.id, signer.address
        relay_contract = deploy(rpc, servers, signer_address)
        direct_contract = deploy(rpc, servers, str(direct.address))
        dispatcher = Dispatcher(producer)
        # Untimed warm-up: the workers' first jobs, the signer's first use.
        run_relay(sessions, dispatcher, rpc, user_id, relay_contract, 2, "warm", args.timeout)
        run_direct(rpc, direct, direct_contract, 2, "warm", args.timeout)

        results: dict[str, list[tuple[float, int]]] = {"relay": [], "direct": []}
        for r in range(args.rounds):
            order = ["relay", "direct"] if r % 2 == 0 else ["direct", "relay"]
            for variant in order:
                tag = f"r{r}"
                if variant == "relay":
                    outcome = run_relay(
                        sessions,
                        dispatcher,
                        rpc,
                        user_id,
                        relay_contract,
                        args.actions,
                        tag,
                        args.timeout,
                    )
                else:
                    outcome = run_direct(
                        rpc, direct, direct_contract, args.actions, tag, args.timeout
                    )
                results[variant].append(outcome)
            print(
                f"  round {r + 1}: relay {results['relay'][-1][0]:.2f} s / "
                f"{results['relay'][-1][1]} blocks, direct {results['direct'][-1][0]:.2f} s / "
                f"{results['direct'][-1][1]} blocks",
                flush=True,
            )
        with sessions() as db:
            mismatches = ledger.verify(db)
        if mismatches:
            raise BenchError(f"ledger verify: {mismatches}")

    print()
    print(
        f"{'variant':<10}{'n':>6}{'seconds':>10}{'blocks':>8}   "
        f"goal: relay within {GOAL_BLOCKS} block"
    )
    med = {
        v: (statistics.median(s for s, _ in rs), statistics.median(b for _, b in rs))
        for v, rs in results.items()
    }
    for variant in ("direct", "relay"):
        seconds, blocks = med[variant]
        verdict = ""
        if variant == "relay":
            verdict = "met" if blocks - med["direct"][1] <= GOAL_BLOCKS else "NOT met"
        print(f"{variant:<10}{args.actions:>6}{seconds:>10.2f}{blocks:>8g}   {verdict}")
    print(
        "(medians of the rounds; seconds: first submission to the last confirmation; blocks: "
        "the last transaction's block minus the height when the round began)"
    )
    print("checks: every action confirmed, every direct call HALTed, ledger verify clean")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
