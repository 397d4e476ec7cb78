"""Deposits and withdrawals end to end on the real Neo node, with real workers.

Blocks come every 250 ms here. The hot wallet is the one the test stack generated
(NSL_HOT_WALLET_WIF / NSL_DEPOSIT_ADDRESS); tests fund what they spend from the dev chain's
committee account.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas import ledger
from neosl.models import ChainCursor, ChainEvent, GasAccount, Transaction, UnmatchedDeposit
from neosl.neo.rpc import NeoRpc, RpcUnavailable
from neosl.neo.transfers import build_gas_transfer
from neosl.onchain.blocks import FOLLOWER_CURSOR, MissingApplicationLog, subscriptions
from neosl_api.app import create_app
from neosl_devstack.servers import free_port
from neosl_gasbank import deposits, withdrawals
from neosl_gasbank.hot_wallet import HotWallet, load_hot_wallet
from neosl_gasbank.worker import create_worker_app
from neosl_scheduler import follower
from tests import factories
from tests.chain import GAS, Chain
from tests.factories import make_user, new_account_key
from tests.proofs import register_key
from tests.rpcproxy import FORWARD_THEN_HOLD, HOLD, REJECT, RpcProxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.neo, pytest.mark.celery]

PASSWORD = "correct horse battery"


@pytest.fixture
def ledger_worker(settings: Settings, redis_client: object) -> Iterator[Celery]:
    app = create_worker_app(settings)
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[jobs.GASBANK_QUEUE]):
        yield app


def new_tenant_account(sessions: sessionmaker[Session], address: str) -> GasAccount:
    with sessions() as db:
        user = make_user(db)
        account = factories.make_account(db, user, address)
        db.commit()
        return account


def credit(sessions: sessionmaker[Session], account: GasAccount, amount: str) -> None:
    with sessions() as db:
        factories.credit(db, account, amount)
        db.commit()


def balance(sessions: sessionmaker[Session], account_id: int) -> Decimal:
    with sessions() as db:
        return db.get_one(GasAccount, account_id).balance


def row(sessions: sessionmaker[Session], transaction_id: int) -> Transaction:
    with sessions() as db:
        return db.get_one(Transaction, transaction_id)


def verify(sessions: sessionmaker[Session]) -> list[ledger.Mismatch]:
    with sessions() as db:
        return ledger.verify(db)


# -- deposits ---------------------------------------------------------------------------


def test_deposit_is_credited_once_and_strangers_are_recorded(
    chain: Chain,
    settings: Settings,
    sessions: sessionmaker[Session],
    producer: Celery,
    ledger_worker: Celery,
) -> None:
    deposit_address = load_hot_wallet(settings).address
    wif, address = new_account_key()
    stranger_wif, stranger = new_account_key()
    account = new_tenant_account(sessions, address)
    chain.fund(address, 5 * GAS)
    chain.fund(stranger, 2 * GAS)
    start = chain.rpc.block_count()
    subs = subscriptions(settings)
    follower.follow(sessions, chain.rpc, subs, None, start_block=start)

    tx_hash, height = chain.send_and_wait(wif, deposit_address, 3 * GAS)
    stranger_hash, stranger_height = chain.send_and_wait(stranger_wif, deposit_address, GAS)
    dispatcher = Dispatcher(producer)
    wait_until(
        lambda: (
            (follower.follow(sessions, chain.rpc, subs, dispatcher).position or 0)
            > max(height, stranger_height)
        ),
        "the follower to pass both deposits' blocks",
    )
    wait_until(lambda: balance(sessions, account.id) == 3, "the deposit to be credited")

    def recorded_unmatched() -> int:
        with sessions() as db:
            return len(db.scalars(select(UnmatchedDeposit)).all())

    wait_until(recorded_unmatched, "the stranger's deposit to be recorded")

    with sessions() as db:
        credited = db.scalars(select(Transaction).where(Transaction.type == "deposit")).one()
        assert (credited.tx_hash, credited.status, credited.amount) == (
            tx_hash,
            "confirmed",
            Decimal(3),
        )
        assert credited.block_index == height
        unmatched = db.scalars(select(UnmatchedDeposit)).one()
        assert (unmatched.tx_hash, unmatched.from_address, unmatched.amount) == (
            stranger_hash,
            stranger,
            Decimal(1),
        )

    # Reading the same blocks again, and re-applying every event, changes nothing.
    with sessions() as db:
        db.execute(
            update(ChainCursor).where(ChainCursor.name == FOLLOWER_CURSOR).values(position=start)
        )
        db.execute(
            update(ChainCursor).where(ChainCursor.name == deposits.CURSOR).values(position=0)
        )
        db.commit()
    wait_until(lambda: follower.follow(sessions, chain.rpc, subs, None).lag == 0, "catch-up")
    with sessions() as db:
        again = deposits.apply_deposits(db, deposit_address)
    assert again["duplicate"] == 1
    assert again["unmatched"] == 1
    assert balance(sessions, account.id) == 3
    with sessions() as db:
        assert len(db.scalars(select(ChainEvent)).all()) == 2
    assert verify(sessions) == []


def test_follower_fails_over_and_resumes_without_skipping(
    chain: Chain, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    subs = subscriptions(settings)
    dead = f"http://127.0.0.1:{free_port()}"
    start = chain.rpc.block_count()
    first = follower.follow(sessions, chain.rpc, subs, None, start_block=start)
    # A block may have come since `start` was read: the follower then read it already.
    start = first.position if first.position is not None else start
    # Only a dead endpoint: the follower fails and the cursor stays where it was.
    wait_until(lambda: chain.rpc.block_count() > start + 3, "a few blocks")
    with NeoRpc([dead], attempts=2, backoff=0.05) as down, pytest.raises(RpcUnavailable):
        follower.follow(sessions, down, subs, None)
    with sessions() as db:
        assert db.get_one(ChainCursor, FOLLOWER_CURSOR).position == start
    # A dead endpoint first, a live one second: failover, and every block is read in order.
    with NeoRpc([dead, *settings.neo_rpc_urls], attempts=2, backoff=0.05) as both:
        result = follower.follow(sessions, both, subs, None)
        assert both.url == settings.neo_rpc_urls[0]
    assert result.height is not None
    assert result.blocks == result.height - start
    assert result.position == result.height
    with sessions() as db:
        cursor = db.get_one(ChainCursor, FOLLOWER_CURSOR)
        assert cursor.position == result.height
        assert cursor.chain_height == result.height


# -- withdrawals ------------------------------------------------------------------------


def settle(
    producer: Celery, sessions: sessionmaker[Session], transaction_id: int, timeout: float = 40
) -> Transaction:
    def settled() -> Transaction | None:
        producer.send_task(jobs.RECONCILE_WITHDRAWALS.name, queue=jobs.GASBANK_QUEUE)
        tx = row(sessions, transaction_id)
        return tx if tx.status != "pending" else None

    result: Transaction = wait_until(
        settled, f"withdrawal {transaction_id} to settle", timeout, every=0.5
    )
    return result


def test_withdrawal_through_the_api_is_confirmed_on_chain(
    chain: Chain,
    hot: HotWallet,
    settings: Settings,
    sessions: sessionmaker[Session],
    producer: Celery,
    ledger_worker: Celery,
) -> None:
    wif, address = new_account_key()
    client = create_app(settings).test_client()
    reg = client.post(
        "/v1/auth/register",
        json={"username": "walt", "email": "walt@example.com", "password": PASSWORD},
    ).get_json()
    headers = {"Authorization": f"Bearer {reg['api_key']}"}
    account = register_key(client, headers, wif).get_json()
    assert account["address"] == address
    with sessions() as db:
        credit(sessions, db.get_one(GasAccount, account["id"]), "10")
    resp = client.post(
        f"/v1/gas/accounts/{account['id']}/withdraw",
        json={"amount": "4.2"},
        headers={**headers, "Idempotency-Key": "w-1"},
    )
    assert resp.status_code == 202, resp.get_json()
    tx_id = resp.get_json()["id"]
    final = settle(producer, sessions, tx_id)
    assert final.status == "confirmed", final.failure_reason
    assert final.block_index is not None
    assert chain.rpc.gas_balance(address) == 420_000_000
    body = client.get(f"/v1/gas/transactions/{tx_id}", headers=headers).get_json()
    assert (body["status"], body["tx_hash"]) == ("confirmed", final.tx_hash)
    assert (
        client.get(f"/v1/gas/accounts/{account['id']}", headers=headers).get_json()["balance"]
        == "5.8"
    )
    assert verify(sessions) == []


def debit(sessions: sessionmaker[Session], account: GasAccount, amount: str) -> int:
    with sessions() as db:
        locked = db.get_one(GasAccount, account.id, with_for_update=True)
        tx = ledger.debit_withdrawal(db, locked, Decimal(amount))
        db.commit()
        return tx.id


def test_hot_wallet_without_enough_gas_fails_and_refunds(
    chain: Chain, hot: HotWallet, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    _, address = new_account_key()
    account = new_tenant_account(sessions, address)
    too_much = chain.rpc.gas_balance(hot.address) // GAS + 1000
    credit(sessions, account, str(too_much))
    tx_id = debit(sessions, account, str(too_much))
    assert withdrawals.send(sessions, chain.rpc, settings, hot, tx_id) == "failed"
    tx = row(sessions, tx_id)
    assert tx.status == "failed"
    assert tx.raw_tx is None
    assert tx.failure_reason is not None
    assert "hot wallet cannot pay" in tx.failure_reason
    assert balance(sessions, account.id) == too_much
    assert verify(sessions) == []


def test_transfer_that_returns_false_on_chain_is_refunded(
    chain: Chain, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # A hot wallet of its own holding 10 GAS, and two 6 GAS withdrawals signed before either
    # is included: each test-invocation passes, but on chain the second returns false.
    wif, hot_address = new_account_key()
    chain.fund(hot_address, 10 * GAS)
    own = dataclasses.replace(settings, hot_wallet_wif=wif, deposit_address=hot_address)
    wallet = HotWallet(hot_address, wif)
    ids, recipients = [], []
    for _ in range(2):
        _, to = new_account_key()
        account = new_tenant_account(sessions, to)
        credit(sessions, account, "6")
        ids.append(debit(sessions, account, "6"))
        recipients.append(to)
    signed = []
    for tx_id, to in zip(ids, recipients, strict=True):
        s = build_gas_transfer(chain.rpc, wif, to, 6 * GAS, valid_for_blocks=100)
        signed.append(s)
        with sessions() as db:
            db.execute(
                update(Transaction)
                .where(Transaction.id == tx_id)
                .values(
                    raw_tx=base64.b64encode(s.raw).decode(),
                    tx_hash=s.tx_hash,
                    valid_until_block=s.valid_until_block,
                )
            )
            db.commit()
    for tx_id in ids:
        withdrawals.send(sessions, chain.rpc, own, wallet, tx_id)

    def both_settled() -> bool:
        withdrawals.reconcile(sessions, chain.rpc, own, wallet)
        return all(row(sessions, i).status != "pending" for i in ids)

    wait_until(both_settled, "both withdrawals to settle", every=0.5)
    statuses = sorted((row(sessions, i).status, row(sessions, i).failure_reason or "") for i in ids)
    assert statuses[0][0] == "confirmed"
    assert statuses[1][0] == "failed"
    assert "failed on chain" in statuses[1][1]
    assert sorted(chain.rpc.gas_balance(to) for to in recipients) == [0, 6 * GAS]
    assert verify(sessions) == []


def test_rejected_then_expired_withdrawal_is_refunded_with_the_reason(
    chain: Chain, hot: HotWallet, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    _, address = new_account_key()
    account = new_tenant_account(sessions, address)
    credit(sessions, account, "3")
    tx_id = debit(sessions, account, "2")
    short = dataclasses.replace(settings, withdraw_valid_blocks=4)
    with RpcProxy(settings.neo_rpc_urls[0]) as proxy, NeoRpc([proxy.url]) as rpc:
        proxy.modes["sendrawtransaction"] = REJECT
        assert withdrawals.send(sessions, rpc, short, hot, tx_id) == "rejected"
        tx = row(sessions, tx_id)
        assert tx.status == "pending"
        assert tx.failure_reason is not None
        assert "proxy says no" in tx.failure_reason
        vub = tx.valid_until_block
        assert vub is not None
        margin = short.settle_margin_blocks
        wait_until(lambda: rpc.block_count() - 1 >= vub + margin, "valid_until_block + margin")
        counts = withdrawals.reconcile(sessions, rpc, short, hot)
    assert counts["expired"] == 1
    tx = row(sessions, tx_id)
    assert tx.status == "failed"
    assert tx.failure_reason is not None
    assert "proxy says no" in tx.failure_reason
    assert "valid_until_block" in tx.failure_reason
    assert balance(sessions, account.id) == 3
    assert chain.rpc.gas_balance(address) == 0
    assert verify(sessions) == []


def start_ledger_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "neosl_gasbank",
                "--pool",
                "solo",
                "--without-mingle",
                "--without-gossip",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.parametrize(
    "mode", [HOLD, FORWARD_THEN_HOLD], ids=["killed-before-send", "killed-after-send"]
)
def test_worker_killed_mid_withdrawal_moves_gas_exactly_once(
    chain: Chain,
    hot: HotWallet,
    settings: Settings,
    server_env: dict[str, str],
    sessions: sessionmaker[Session],
    producer: Celery,
    tmp_path: Path,
    mode: str,
) -> None:
    _, address = new_account_key()
    account = new_tenant_account(sessions, address)
    credit(sessions, account, "5")
    tx_id = debit(sessions, account, "1.5")
    log = tmp_path / "ledger.log"
    with RpcProxy(settings.neo_rpc_urls[0]) as proxy:
        proxy.modes["sendrawtransaction"] = mode
        env = {**server_env, "NEO_RPC_URL": proxy.url, "NEO_RPC_URLS": ""}
        worker = start_ledger_process(env, log)
        try:
            producer.send_task(
                jobs.SEND_WITHDRAWAL.name,
                kwargs={"transaction_id": tx_id},
                queue=jobs.GASBANK_QUEUE,
            )
            assert proxy.held.wait(60), log.read_text()
            signed = row(sessions, tx_id)
            assert signed.raw_tx is not None  # committed before the send began
            if mode == FORWARD_THEN_HOLD:
                tx_hash = signed.tx_hash
                assert tx_hash is not None
                wait_until(
                    lambda: chain.rpc.application_log(tx_hash), "the sent transfer in a block"
                )
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
        assert row(sessions, tx_id).status == "pending"

        proxy.modes.clear()
        proxy.release.set()
        restarted = start_ledger_process(env, log)
        try:
            final = settle(producer, sessions, tx_id, timeout=60)
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait(20)
    assert final.status == "confirmed", (final.failure_reason, log.read_text()[-3000:])
    assert final.tx_hash == signed.tx_hash  # the very transaction signed before the crash
    assert chain.rpc.gas_balance(address) == 150_000_000  # exactly one transfer
    assert balance(sessions, account.id) == Decimal("3.5")
    assert verify(sessions) == []


def test_follower_does_not_pass_a_block_whose_logs_are_missing(
    chain: Chain, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    _, address = new_account_key()
    start = chain.rpc.block_count()
    subs = subscriptions(settings)
    follower.follow(sessions, chain.rpc, subs, None, start_block=start)
    tx_hash = chain.fund(address, GAS)
    height = chain.rpc.transaction_height(tx_hash)
    assert height is not None
    with RpcProxy(settings.neo_rpc_urls[0]) as proxy, NeoRpc([proxy.url]) as rpc:
        # A node that keeps no application logs answers "unknown" for every transaction.
        proxy.modes["getapplicationlog"] = REJECT
        proxy.reject_error = {"code": -105, "message": "Unknown script container"}
        with pytest.raises(MissingApplicationLog, match=tx_hash):
            wait_until(
                lambda: follower.follow(sessions, rpc, subs, None).position == height + 1,
                "the follower to reach the funding block",
                timeout=15,
            )
    with sessions() as db:
        assert db.get_one(ChainCursor, FOLLOWER_CURSOR).position == height
