"""The chain follower's safety rails on the real Neo node: configuration checked at start, one
deposit address per deployment, rescans that backfill without double credit, and deposits
from unproven senders left for an operator.

Blocks come every 250 ms here; deposits are real GAS transfers to the stack's deposit address.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from redis import Redis
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import ConfigError, Settings, load_settings
from neosl.gas import bank, ledger
from neosl.gas.money import format_amount
from neosl.models import ChainCursor, ChainEvent, GasAccount, Transaction, UnmatchedDeposit
from neosl.onchain.blocks import (
    DEPOSITS,
    FOLLOWER_CURSOR,
    read_block,
    rescan,
    store_block,
    subscriptions,
)
from neosl.onchain.deployment import Disagreement, followed
from neosl_gasbank import deposits
from neosl_gasbank.worker import create_worker_app as gasbank_worker_app
from neosl_scheduler import follower
from neosl_scheduler.worker import create_worker_app as scheduler_app
from tests.chain import GAS, Chain
from tests.clirun import run_cli
from tests.factories import make_user, new_account_key, new_address
from tests.platform.test_jobs_after_commit import waiting
from tests.waiting import wait_until

pytestmark = pytest.mark.neo


@pytest.fixture
def deposit_address(settings: Settings) -> str:
    address = bank.deposit_address(settings)
    assert address is not None
    return address


def tenant_account(sessions: sessionmaker[Session], address: str, *, proven: bool) -> GasAccount:
    with sessions() as db:
        user = make_user(db)
        account = GasAccount(
            user_id=user.id,
            address=address,
            is_default=True,
            verified_at=dt.datetime.now(dt.UTC) if proven else None,
        )
        db.add(account)
        db.commit()
        return account


def balance(sessions: sessionmaker[Session], account_id: int) -> Decimal:
    with sessions() as db:
        return db.get_one(GasAccount, account_id).balance


def deposit_rows(sessions: sessionmaker[Session]) -> list[Transaction]:
    with sessions() as db:
        return list(db.scalars(select(Transaction).where(Transaction.type == "deposit")))


def apply(sessions: sessionmaker[Session], deposit_address: str) -> dict[str, int]:
    """Apply the stored events as the gasbank worker does (it commits)."""
    with sessions() as db:
        return dict(deposits.apply_deposits(db, deposit_address))


def follower_position(sessions: sessionmaker[Session]) -> int:
    with sessions() as db:
        return db.get_one(ChainCursor, FOLLOWER_CURSOR).position


# -- configuration checked at start -------------------------------------------------------


def test_workers_refuse_to_start_without_the_deposit_address(settings: Settings) -> None:
    missing = dataclasses.replace(settings, deposit_address=None)
    assert missing.gas_bank_enabled
    with pytest.raises(ConfigError, match="NSL_DEPOSIT_ADDRESS is not set"):
        scheduler_app(missing)
    with pytest.raises(ConfigError, match="NSL_DEPOSIT_ADDRESS is not set"):
        gasbank_worker_app(missing)
    with pytest.raises(ConfigError, match="NSL_DEPOSIT_ADDRESS"):
        subscriptions(missing)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NSL_DEPOSIT_ADDRESS", "not-an-address"),
        # Well-formed but a wrong checksum: a typo must not send tenants' GAS astray.
        ("NSL_DEPOSIT_ADDRESS", "checksum"),
        ("NSL_GAS_BANK", "maybe"),
    ],
    ids=["garbage", "bad-checksum", "gas-bank-switch"],
)
def test_an_invalid_value_is_refused_naming_it(
    server_env: dict[str, str], deposit_address: str, name: str, value: str
) -> None:
    if value == "checksum":
        last = deposit_address[-1]
        value = deposit_address[:-1] + ("a" if last != "a" else "b")
    # Settings read the variables; a process serving the gas bank checks the address at
    # start (bank.deposit_address), so either refuses it.
    with pytest.raises(ConfigError, match=name):
        bank.deposit_address(load_settings({**server_env, name: value}))


def test_rescan_command_refuses_to_run_without_the_deposit_address(
    server_env: dict[str, str],
) -> None:
    result = run_cli({**server_env, "NSL_DEPOSIT_ADDRESS": ""}, "chain", "rescan", "--from", "0")
    assert result.returncode == 2
    assert "NSL_DEPOSIT_ADDRESS is not set" in result.stderr


@pytest.mark.celery
def test_scheduler_runs_without_the_deposit_address_when_the_gas_bank_is_off(
    server_env: dict[str, str], sessions: sessionmaker[Session], redis_client: Redis
) -> None:
    off = load_settings({**server_env, "NSL_GAS_BANK": "off", "NSL_DEPOSIT_ADDRESS": ""})
    assert (off.gas_bank_enabled, off.deposit_address) == (False, None)
    assert subscriptions(off) == []
    app = scheduler_app(off)

    def cursor() -> ChainCursor | None:
        with sessions() as db:
            return db.get(ChainCursor, FOLLOWER_CURSOR)

    with start_worker(app, pool="solo", perform_ping_check=False, queues=[jobs.SCHEDULER_QUEUE]):
        app.send_task(jobs.FOLLOW_CHAIN.name, queue=jobs.SCHEDULER_QUEUE)
        wait_until(cursor, "the follower to run", timeout=20)
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(ChainEvent)) == 0


# -- one deposit address per deployment ----------------------------------------------------


def test_follower_with_another_deposit_address_passes_no_block(
    chain: Chain,
    settings: Settings,
    sessions: sessionmaker[Session],
    server_env: dict[str, str],
) -> None:
    subs = subscriptions(settings)
    start = chain.rpc.block_count()
    follower.follow(sessions, chain.rpc, subs, None, start_block=start)
    # Past ``start`` if a block came meanwhile.
    position = follower_position(sessions)
    wait_until(lambda: chain.rpc.block_count() > position + 2, "a few new blocks")

    moved = subscriptions(dataclasses.replace(settings, deposit_address=new_address()))
    with pytest.raises(Disagreement, match="--forget ledger-deposits"):
        follower.follow(sessions, chain.rpc, moved, None)
    with pytest.raises(Disagreement, match="no such subscription"):
        follower.follow(sessions, chain.rpc, [], None)
    with pytest.raises(Disagreement):
        rescan(sessions, chain.rpc, moved, None, start, start)
    assert follower_position(sessions) == position

    listed = run_cli(server_env, "chain", "subscriptions")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{DEPOSITS}  {subs[0].target}"]
    assert subs[0].target.endswith(f" to {settings.deposit_address}")

    forgot = run_cli(server_env, "chain", "subscriptions", "--forget", DEPOSITS)
    assert forgot.returncode == 0, forgot.stderr
    with sessions() as db:
        assert followed(db) == {}

    # Settled by the operator: the next follower records its own address and goes on.
    result = follower.follow(sessions, chain.rpc, moved, None)
    assert result.blocks > 0
    assert follower_position(sessions) > position
    with sessions() as db:
        assert followed(db) == {DEPOSITS: moved[0].target}


# -- rescans ----------------------------------------------------------------------------


def test_rescan_backfills_a_deposit_the_follower_never_read(
    chain: Chain,
    settings: Settings,
    deposit_address: str,
    sessions: sessionmaker[Session],
    server_env: dict[str, str],
    redis_client: Redis,
) -> None:
    wif, address = new_account_key()
    account = tenant_account(sessions, address, proven=True)
    chain.fund(address, 3 * GAS)
    tx_hash, block = chain.send_and_wait(wif, deposit_address, 2 * GAS)

    # The follower starts after the deposit's block, so it never reads it.
    subs = subscriptions(settings)
    started = follower.follow(sessions, chain.rpc, subs, None)
    assert started.position is not None
    assert started.position > block
    wait_until(
        lambda: follower.follow(sessions, chain.rpc, subs, None).blocks > 0,
        "the follower to pass a new block",
    )
    assert apply(sessions, deposit_address).get("credited", 0) == 0
    assert balance(sessions, account.id) == 0
    position = follower_position(sessions)

    out = run_cli(server_env, "chain", "rescan", "--from", str(block), "--to", str(block))
    assert out.returncode == 0, out.stderr
    assert f"rescanned blocks {block}..{block}: 1 matching notification(s), 1 new" in out.stdout
    # The gas ledger is told (no worker consumes its queue here, so the job waits there).
    assert waiting(redis_client, jobs.GASBANK_QUEUE) == [(jobs.APPLY_DEPOSITS.name, {})]
    assert follower_position(sessions) == position

    assert apply(sessions, deposit_address)["credited"] == 1
    assert balance(sessions, account.id) == 2
    [deposit] = deposit_rows(sessions)
    assert (deposit.account_id, deposit.tx_hash, deposit.block_index, deposit.amount) == (
        account.id,
        tx_hash,
        block,
        Decimal(2),
    )

    # The same range again: found again, stored once, credited once.
    out = run_cli(server_env, "chain", "rescan", "--from", str(block), "--to", str(block))
    assert out.returncode == 0, out.stderr
    assert "1 matching notification(s), 0 new" in out.stdout
    assert apply(sessions, deposit_address).get("credited", 0) == 0
    assert balance(sessions, account.id) == 2
    assert len(deposit_rows(sessions)) == 1
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(ChainEvent)) == 1

    verified = run_cli(server_env, "ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "0 mismatched" in verified.stdout


def test_rescan_beside_the_follower_loses_no_deposit(
    chain: Chain,
    settings: Settings,
    deposit_address: str,
    sessions: sessionmaker[Session],
) -> None:
    wif, address = new_account_key()
    account = tenant_account(sessions, address, proven=True)
    chain.fund(address, 5 * GAS)
    _, early = chain.send_and_wait(wif, deposit_address, GAS)
    _, late = chain.send_and_wait(wif, deposit_address, 2 * GAS)
    subs = subscriptions(settings)
    followed: list[int] = []

    def follow_late_block() -> None:
        result = follower.follow(sessions, chain.rpc, subs, None, start_block=late, batch=1)
        followed.append(result.events)

    def follower_waits_for_the_rescan() -> bool:
        with sessions() as db:
            waiting = db.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
            )
        return bool(waiting)

    with sessions() as rescanning:
        # What ``rescan`` does for one block, stopped between its insert and its commit.
        _, new = store_block(rescanning, read_block(chain.rpc, early), subs, None)
        assert new == 1
        # Meanwhile the follower reaches the later deposit: it must wait for the rescan's
        # commit, so that event ids become visible in order.
        thread = threading.Thread(target=follow_late_block)
        thread.start()
        wait_until(follower_waits_for_the_rescan, "the follower to wait for the rescan")
        assert apply(sessions, deposit_address).get("credited", 0) == 0
        rescanning.commit()
    thread.join(30)
    assert followed == [1]
    apply(sessions, deposit_address)
    assert balance(sessions, account.id) == 3


# -- deposits from unproven senders -------------------------------------------------------


def test_deposit_from_an_unproven_address_waits_for_an_operator(
    chain: Chain,
    settings: Settings,
    deposit_address: str,
    sessions: sessionmaker[Session],
    server_env: dict[str, str],
) -> None:
    wif, address = new_account_key()
    account = tenant_account(sessions, address, proven=False)
    chain.fund(address, 3 * GAS)
    subs = subscriptions(settings)
    start = chain.rpc.block_count()
    follower.follow(sessions, chain.rpc, subs, None, start_block=start)
    tx_hash, block = chain.send_and_wait(wif, deposit_address, GAS)
    wait_until(
        lambda: (follower.follow(sessions, chain.rpc, subs, None).position or 0) > block,
        "the follower to pass the deposit's block",
    )

    assert apply(sessions, deposit_address).get("unmatched") == 1
    assert balance(sessions, account.id) == 0
    assert deposit_rows(sessions) == []
    with sessions() as db:
        unmatched = db.scalars(select(UnmatchedDeposit)).one()
    assert (unmatched.tx_hash, unmatched.from_address, unmatched.amount, unmatched.reason) == (
        tx_hash,
        address,
        Decimal(1),
        "unverified",
    )
    assert unmatched.credited_transaction_id is None

    listed = run_cli(server_env, "deposits", "unmatched")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"{unmatched.id}  {format_amount(Decimal(1))} GAS from {address}  unverified  "
        f"block {block}  {tx_hash}#{unmatched.notification_index}"
    ]

    args = ("deposits", "credit", str(unmatched.id), "--account", str(account.id))
    credited = run_cli(server_env, *args)
    assert credited.returncode == 0, credited.stderr
    [deposit] = deposit_rows(sessions)
    assert credited.stdout.strip() == (
        f"credited unmatched deposit {unmatched.id} as transaction {deposit.id}"
    )
    assert (deposit.account_id, deposit.tx_hash, deposit.amount) == (
        account.id,
        tx_hash,
        Decimal(1),
    )
    assert balance(sessions, account.id) == 1

    twice = run_cli(server_env, *args)
    assert twice.returncode == 1
    assert "credited already" in twice.stderr
    assert balance(sessions, account.id) == 1
    with sessions() as db:
        assert db.get_one(UnmatchedDeposit, unmatched.id).credited_transaction_id == deposit.id

    # The tenant proves the address later and the events are applied again from the start:
    # the transfer was credited, so it is not credited a second time.
    with sessions() as db:
        db.execute(
            update(GasAccount)
            .where(GasAccount.id == account.id)
            .values(verified_at=dt.datetime.now(dt.UTC))
        )
        db.execute(
            update(ChainCursor).where(ChainCursor.name == deposits.CURSOR).values(position=0)
        )
        db.commit()
    assert apply(sessions, deposit_address).get("duplicate") == 1
    assert balance(sessions, account.id) == 1
    assert len(deposit_rows(sessions)) == 1
    with sessions() as db:
        assert ledger.verify(db) == []
