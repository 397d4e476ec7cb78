"""The relay on the real chain: actions test-invoked, fees held, signed once, settled, charged.

These tests drive the gasbank's service functions directly (``actions.relay_action``,
``actions.reconcile``) against the dev chain; the job path is in test_actions_flow.py.
GAS itself (a native contract every chain has) is the contract called: ``transfer`` needs
``CheckWitness(from)``, so a zero transfer from the tenant's signer shows the signer's
witness works, and one from the hot wallet shows the hot wallet's does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas import ledger
from neosl.gas.money import from_units, to_units
from neosl.models import ChainCursor, GasAccount, NeoAction, NeoSigner, Transaction
from neosl.neo.rpc import NeoRpc, RpcUnavailable
from neosl.onchain import actions, relaybox, signers
from neosl_gasbank import actions as relay_actions
from neosl_gasbank.hot_wallet import HotWallet
from tests import factories
from tests.chain import GAS, Chain
from tests.rpcproxy import FORWARD_THEN_HOLD, HOLD, HTTP_500, SWALLOW, UNKNOWN, RpcProxy
from tests.waiting import wait_until

pytestmark = pytest.mark.neo

GAS_CONTRACT = "0xd2a4cff31913016155e38e474a2c06d08be276cf"
SERVICE_FEE = Decimal("0.001")
# Before it test-invokes, the relay asks for a balance covering this cap plus the service
# fee: tenants here hold a few GAS, and these calls cost far less.
MAX_FEE = Decimal(1)


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    assert settings.relay_key is not None, "the test stack configures the relay's key"
    return dataclasses.replace(settings, action_service_fee=SERVICE_FEE, action_max_fee=MAX_FEE)


@dataclasses.dataclass
class Tenant:
    user_id: int
    account_id: int
    signer: str  # address


@pytest.fixture
def dispatcher(producer: Any) -> Dispatcher:
    return Dispatcher(producer)


def new_tenant(sessions: sessionmaker[Session], settings: Settings, gas: str) -> Tenant:
    with sessions() as db:
        user = factories.make_user(db)
        account = factories.make_account(db, user)
        if Decimal(gas) > 0:
            factories.credit(db, account, gas)
        signer = signers.get_or_create(db, user.id, relaybox.relay_public_key(settings))
        db.commit()
        return Tenant(user.id, account.id, signer.address)


def queue(
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    tenant: Tenant,
    method: str,
    args: list[Any],
) -> int:
    return queue_call(sessions, dispatcher, tenant, GAS_CONTRACT, method, args)


def hash160(address: str) -> dict[str, str]:
    return {"$neo": "Hash160", "value": address}


def load(sessions: sessionmaker[Session], action_id: int) -> NeoAction:
    with sessions() as db:
        return db.get_one(NeoAction, action_id)


def balance(sessions: sessionmaker[Session], account_id: int) -> Decimal:
    with sessions() as db:
        return db.get_one(GasAccount, account_id).balance


def charges(sessions: sessionmaker[Session], action_id: int) -> list[Transaction]:
    with sessions() as db:
        return list(
            db.scalars(
                select(Transaction)
                .where(Transaction.reference == f"action:{action_id}")
                .order_by(Transaction.id)
            )
        )


def verify(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        assert ledger.verify(db) == []


def settle(
    sessions: sessionmaker[Session], rpc: NeoRpc, settings: Settings, hot: HotWallet, action_id: int
) -> NeoAction:
    """Reconcile until the action is settled."""

    def settled() -> NeoAction | None:
        relay_actions.reconcile(sessions, rpc, settings, hot)
        action = load(sessions, action_id)
        return action if action.status in ("confirmed", "failed") else None

    settled_action: NeoAction = wait_until(settled, f"action {action_id} settled", timeout=60)
    return settled_action


def test_an_action_is_confirmed_and_charged_what_the_chain_took(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    tenant = new_tenant(sessions, relay_settings, "5")
    hot_before = chain.rpc.gas_balance(hot.address)
    action_id = queue(
        sessions,
        dispatcher,
        tenant,
        "transfer",
        [hash160(tenant.signer), hash160(tenant.signer), 0, None],
    )
    outcome = relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, action_id)
    assert outcome == "sent"
    pending = load(sessions, action_id)
    assert pending.status == "pending"
    assert pending.tx_hash is not None
    # A second delivery of the job re-sends the same bytes: one transaction.
    assert relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, action_id) == "sent"

    action = settle(sessions, chain.rpc, relay_settings, hot, action_id)
    assert action.status == "confirmed", action.failure_reason
    assert action.vm_state == "HALT"
    assert action.block_index == chain.rpc.transaction_height(pending.tx_hash)
    app_log = chain.rpc.application_log(pending.tx_hash)
    assert app_log is not None
    (run,) = app_log["executions"]
    raw = chain.rpc.call("getrawtransaction", [pending.tx_hash, True])
    chain_fees = from_units(int(raw["sysfee"])) + from_units(int(raw["netfee"]))
    assert action.gas_consumed == from_units(int(run["gasconsumed"]))
    assert action.fee_charged == chain_fees + SERVICE_FEE
    assert balance(sessions, tenant.account_id) == Decimal(5) - action.fee_charged
    # The hot wallet paid exactly the chain's fees (it moved no GAS otherwise).
    assert hot_before - chain.rpc.gas_balance(hot.address) == int(raw["sysfee"]) + int(
        raw["netfee"]
    )
    # Two signers: the hot wallet pays with no scope, the tenant's signer witnesses.
    assert [(s["account"], s["scopes"]) for s in raw["signers"]] == [
        (f"0x{_hash(hot.address)}", "None"),
        (f"0x{_hash(tenant.signer)}", "CalledByEntry"),
    ]
    # The hold (system fee from the test invocation + network fee + service fee) and a
    # refund of whatever the chain did not consume (none when it consumed all of it).
    held, *refunds = charges(sessions, action_id)
    assert (held.type, held.status) == ("function", "confirmed")
    assert all(r.type == "refund" for r in refunds)
    assert held.amount - sum(r.amount for r in refunds) == action.fee_charged
    verify(sessions)


def test_a_call_that_faults_in_the_test_invocation_is_never_sent_nor_charged(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    tenant = new_tenant(sessions, relay_settings, "5")
    action_id = queue(
        sessions,
        dispatcher,
        tenant,
        "transfer",
        [hash160(tenant.signer), hash160(tenant.signer), -1, None],
    )
    assert (
        relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, action_id) == "failed"
    )
    action = load(sessions, action_id)
    assert action.status == "failed"
    assert action.tx_hash is None
    assert "FAULT" in (action.failure_reason or ""), action.failure_reason
    assert "amount" in (action.failure_reason or "").lower(), action.failure_reason
    assert charges(sessions, action_id) == []
    assert balance(sessions, tenant.account_id) == Decimal(5)


def test_insufficient_funds_and_runaway_fees_send_nothing(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    poor = new_tenant(sessions, relay_settings, "0.0001")
    args = [hash160(poor.signer), hash160(poor.signer), 0, None]
    action_id = queue(sessions, dispatcher, poor, "transfer", args)
    assert (
        relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, action_id) == "failed"
    )
    action = load(sessions, action_id)
    assert (action.status, action.tx_hash) == ("failed", None)
    assert (action.failure_reason or "").startswith("insufficient funds"), action.failure_reason
    assert balance(sessions, poor.account_id) == Decimal("0.0001")

    rich = new_tenant(sessions, relay_settings, "5")
    capped = dataclasses.replace(relay_settings, action_max_fee=Decimal("0.00000001"))
    action_id = queue(
        sessions,
        dispatcher,
        rich,
        "transfer",
        [hash160(rich.signer), hash160(rich.signer), 0, None],
    )
    assert relay_actions.relay_action(sessions, chain.rpc, capped, hot, action_id) == "failed"
    action = load(sessions, action_id)
    assert "more than the cap" in (action.failure_reason or ""), action.failure_reason
    assert charges(sessions, action_id) == []
    assert balance(sessions, rich.account_id) == Decimal(5)
    verify(sessions)


def test_the_hot_wallet_witness_authorizes_nothing(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    tenant = new_tenant(sessions, relay_settings, "5")
    hot_before = chain.rpc.gas_balance(hot.address)
    # GAS.transfer from the hot wallet to the tenant's signer: it pays the fees, but its
    # witness (scope None) does not satisfy CheckWitness, so transfer returns false.
    action_id = queue(
        sessions,
        dispatcher,
        tenant,
        "transfer",
        [hash160(hot.address), hash160(tenant.signer), 10 * GAS, None],
    )
    relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, action_id)
    action = settle(sessions, chain.rpc, relay_settings, hot, action_id)
    assert chain.rpc.gas_balance(tenant.signer) == 0
    app_log = chain.rpc.application_log(action.tx_hash or "")
    assert app_log is not None
    (run,) = app_log["executions"]
    assert run["stack"] == [{"type": "Boolean", "value": False}]
    raw = chain.rpc.call("getrawtransaction", [action.tx_hash, True])
    assert hot_before - chain.rpc.gas_balance(hot.address) == int(raw["sysfee"]) + int(
        raw["netfee"]
    )
    verify(sessions)


@pytest.mark.parametrize("mode", [HOLD, FORWARD_THEN_HOLD])
def test_a_relay_cut_off_while_sending_is_finished_by_the_next_pass(
    mode: str,
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    """The worker dies while it sends (HOLD: before the node got the transaction;
    FORWARD_THEN_HOLD: right after): the row is signed and stored, not known to be sent.
    The next pass sends the same bytes again: exactly one transaction, charged once."""
    tenant = new_tenant(sessions, relay_settings, "5")
    args = [hash160(tenant.signer), hash160(tenant.signer), 0, None]
    action_id = queue(sessions, dispatcher, tenant, "transfer", args)
    hot_before = chain.rpc.gas_balance(hot.address)
    with send_held(mode, relay_settings, sessions, hot, action_id):
        stored = load(sessions, action_id)
        assert stored.status == "pending"
        action = settle(sessions, chain.rpc, relay_settings, hot, action_id)
    assert action.status == "confirmed", action.failure_reason
    assert action.tx_hash == stored.tx_hash
    app_log = chain.rpc.application_log(action.tx_hash or "")
    assert app_log is not None
    assert [run["vmstate"] for run in app_log["executions"]] == ["HALT"]
    raw = chain.rpc.call("getrawtransaction", [action.tx_hash, True])
    # One transaction's fees left the hot wallet.
    assert hot_before - chain.rpc.gas_balance(hot.address) == int(raw["sysfee"]) + int(
        raw["netfee"]
    )
    assert balance(sessions, tenant.account_id) == Decimal(5) - (action.fee_charged or 0)
    verify(sessions)


def test_a_transaction_that_never_lands_expires_and_its_hold_is_refunded(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    """A node accepted the transaction and lost it: once its valid_until_block has passed
    on a node that does not know it, the action fails and nothing is charged."""
    short = dataclasses.replace(relay_settings, action_valid_blocks=2)
    tenant = new_tenant(sessions, relay_settings, "5")
    args = [hash160(tenant.signer), hash160(tenant.signer), 0, None]
    action_id = queue(sessions, dispatcher, tenant, "transfer", args)
    with RpcProxy(relay_settings.neo_rpc_url) as proxy, NeoRpc([proxy.url]) as lossy:
        proxy.modes["sendrawtransaction"] = SWALLOW
        assert relay_actions.relay_action(sessions, lossy, short, hot, action_id) == "sent"
    assert balance(sessions, tenant.account_id) < Decimal(5)
    failed = settle(sessions, chain.rpc, short, hot, action_id)
    assert failed.status == "failed"
    assert "not included" in (failed.failure_reason or ""), failed.failure_reason
    assert failed.fee_charged == 0
    assert chain.rpc.transaction_height(failed.tx_hash or "") is None
    assert balance(sessions, tenant.account_id) == Decimal(5)
    verify(sessions)


def queue_call(
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    tenant: Tenant,
    contract: str,
    method: str,
    args: list[Any],
) -> int:
    with sessions() as db:
        action = actions.queue(
            db, dispatcher, tenant.user_id, actions.check(contract, method, args), limit=100
        )
        db.commit()
        return action.id


def test_a_call_that_faults_on_chain_is_charged_its_real_fees(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    """It passed its test invocation, then FAULTed in its block: the chain still took GAS,
    so the tenant pays what the application log says, plus the service fee."""
    tenant = new_tenant(sessions, relay_settings, "5")
    consumer = chain.deploy_consumer(tenant.signer)
    hot_before = chain.rpc.gas_balance(hot.address)
    too_late = chain.rpc.block_count() - 1 + 3
    action_id = queue_call(sessions, dispatcher, tenant, consumer, "fail_from", [too_late])
    with send_held(HOLD, relay_settings, sessions, hot, action_id):
        wait_until(lambda: chain.rpc.block_count() - 1 >= too_late, f"block {too_late}")
        action = settle(sessions, chain.rpc, relay_settings, hot, action_id)
    assert action.status == "failed"
    assert action.vm_state == "FAULT"
    # Its abort path costs more than the test invocation's path: the VM stops it at the GAS
    # limit (the system fee) or at the abort, a FAULT either way.
    assert (action.failure_reason or "").startswith("the transaction FAULTed on chain: ")
    app_log = chain.rpc.application_log(action.tx_hash or "")
    assert app_log is not None
    (run,) = app_log["executions"]
    assert run["vmstate"] == "FAULT"
    raw = chain.rpc.call("getrawtransaction", [action.tx_hash, True])
    # The whole system fee is burned, even where the VM stopped past it.
    taken = int(raw["sysfee"]) + int(raw["netfee"])
    assert hot_before - chain.rpc.gas_balance(hot.address) == taken
    assert action.fee_charged == from_units(taken) + SERVICE_FEE
    assert balance(sessions, tenant.account_id) == Decimal(5) - action.fee_charged
    verify(sessions)


def test_a_contract_refuses_another_tenants_signer(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    owner = new_tenant(sessions, relay_settings, "5")
    intruder = new_tenant(sessions, relay_settings, "5")
    consumer = chain.deploy_consumer(owner.signer)
    action_id = queue_call(sessions, dispatcher, intruder, consumer, "set", ["k", "v"])
    assert (
        relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, action_id) == "failed"
    )
    action = load(sessions, action_id)
    assert "only the owner can write" in (action.failure_reason or ""), action.failure_reason
    assert (action.tx_hash, charges(sessions, action_id)) == (None, [])
    assert balance(sessions, intruder.account_id) == Decimal(5)


@contextlib.contextmanager
def send_held(
    mode: str,
    settings: Settings,
    sessions: sessionmaker[Session],
    hot: HotWallet,
    action_id: int,
) -> Iterator[None]:
    """``relay_action`` on a thread whose ``sendrawtransaction`` the proxy holds (``mode``):
    inside, the action is signed and stored and its worker cut off while sending; the held
    request is let go at the end."""
    with (
        RpcProxy(settings.neo_rpc_url) as proxy,
        NeoRpc([proxy.url], timeout=60, attempts=1) as cut_off,
    ):
        proxy.modes["sendrawtransaction"] = mode
        worker = threading.Thread(
            target=lambda: _quietly(
                relay_actions.relay_action, sessions, cut_off, settings, hot, action_id
            ),
            daemon=True,
        )
        worker.start()
        assert proxy.held.wait(30)
        try:
            yield
        finally:
            proxy.release.set()
            worker.join(30)


def _quietly(fn: Any, *args: Any) -> None:
    # The cut-off worker's fate is not what is tested.
    with contextlib.suppress(Exception):
        fn(*args)


def _hash(address: str) -> str:
    from neosl.neo.addresses import address_to_script_hash

    return str(address_to_script_hash(address))


def test_signer_keys_open_only_for_the_relay_and_their_own_row(
    relay_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    from neosl.onchain.relaybox import SignerKeyUnreadable

    a = new_tenant(sessions, relay_settings, "0")
    b = new_tenant(sessions, relay_settings, "0")
    key = relaybox.relay_key(relay_settings)
    assert key is not None
    with sessions() as db:
        row_a = db.get_one(NeoSigner, a.user_id)
        row_b = db.get_one(NeoSigner, b.user_id)
        assert signers.open_signer(row_a, key).address == a.signer
        # A's sealed key copied onto B's row does not open.
        row_b.sealed_key = row_a.sealed_key
        with pytest.raises(SignerKeyUnreadable):
            signers.open_signer(row_b, key)
        db.rollback()
        # The same tenant asking again gets the same signer.
        again = signers.get_or_create(db, a.user_id, key.public)
        assert again.address == a.signer


def test_a_queued_action_whose_job_was_lost_is_relayed_by_the_settlement_pass(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    tenant = new_tenant(sessions, relay_settings, "5")
    args = [hash160(tenant.signer), hash160(tenant.signer), 0, None]
    # Its job is in the broker, and no gasbank worker takes it in this test.
    action_id = queue(sessions, dispatcher, tenant, "transfer", args)
    # Younger than NSL_ACTION_REQUEUE_SECONDS (30): left to its own job.
    relay_actions.reconcile(sessions, chain.rpc, relay_settings, hot)
    assert load(sessions, action_id).status == "queued"
    quick = dataclasses.replace(relay_settings, action_requeue_seconds=1)
    action = settle(sessions, chain.rpc, quick, hot, action_id)
    assert action.status == "confirmed", action.failure_reason
    verify(sessions)


def test_one_settlement_pass_at_a_time(
    chain: Chain, relay_settings: Settings, sessions: sessionmaker[Session], hot: HotWallet
) -> None:
    with sessions() as other:
        key = relay_actions._RECONCILE_LOCK
        assert other.execute(select(func.pg_try_advisory_lock(key))).scalar()
        try:
            counts = relay_actions.reconcile(sessions, chain.rpc, relay_settings, hot)
        finally:
            other.execute(select(func.pg_advisory_unlock(key)))
    assert counts == {"busy": 1}
    assert "busy" not in relay_actions.reconcile(sessions, chain.rpc, relay_settings, hot)


def test_one_job_relays_the_queued_burst_as_one_batch(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    """Its own action first, then the other queued ones: each signed and held once, sent
    together; one that FAULTs or that its tenant cannot cover fails alone."""
    rich = new_tenant(sessions, relay_settings, "5")
    # Covers the most one action may hold (the fee cap plus the service fee), not two.
    poor = new_tenant(sessions, relay_settings, "1.5")
    own = [hash160(rich.signer), hash160(rich.signer), 0, None]
    good = [queue(sessions, dispatcher, rich, "transfer", own) for _ in range(3)]
    faulting = queue(sessions, dispatcher, rich, "transfer", [*own[:2], -1, None])
    theirs = [hash160(poor.signer), hash160(poor.signer), 0, None]
    poor_first, poor_second = (
        queue(sessions, dispatcher, poor, "transfer", theirs) for _ in range(2)
    )
    assert relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, good[-1]) == "sent"
    every = [*good, faulting, poor_first, poor_second]
    loaded = {action_id: load(sessions, action_id) for action_id in every}
    assert [loaded[a].status for a in every] == [
        "pending",
        "pending",
        "pending",
        "failed",
        "pending",
        "failed",
    ]
    assert "FAULT" in (loaded[faulting].failure_reason or "")
    assert (loaded[poor_second].failure_reason or "").startswith("insufficient funds")
    sent = [a for a in every if loaded[a].status == "pending"]
    assert len({loaded[a].tx_hash for a in sent}) == len(sent)
    with sessions() as db:
        sent_at = db.scalars(
            select(Transaction.sent_at).where(
                Transaction.id.in_([loaded[a].transaction_id for a in sent])
            )
        ).all()
    assert len(sent_at) == len(sent)
    assert None not in sent_at
    # Its job, delivered now, finds it sent: nothing is signed or sent again.
    assert relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, good[0]) == "sent"
    for action_id in sent:
        assert settle(sessions, chain.rpc, relay_settings, hot, action_id).status == "confirmed"
        assert len(charges(sessions, action_id)) >= 1
    assert charges(sessions, faulting) == []
    assert charges(sessions, poor_second) == []
    verify(sessions)


def test_concurrent_jobs_sign_each_action_of_a_burst_once(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    tenant = new_tenant(sessions, relay_settings, "20")
    args = [hash160(tenant.signer), hash160(tenant.signer), 0, None]
    ids = [queue(sessions, dispatcher, tenant, "transfer", args) for _ in range(12)]
    small = dataclasses.replace(relay_settings, relay_batch=3)
    hot_before = chain.rpc.gas_balance(hot.address)
    barrier = threading.Barrier(4)

    def relay(action_id: int) -> str:
        barrier.wait(10)
        return relay_actions.relay_action(sessions, chain.rpc, small, hot, action_id)

    outcomes: list[str] = []
    for group in range(0, len(ids), 4):
        threads = ThreadPoolExecutor(max_workers=4)
        with threads:
            outcomes += list(threads.map(relay, ids[group : group + 4]))
    assert set(outcomes) <= {"sent", "busy"}, outcomes
    assert all(load(sessions, a).status == "pending" for a in ids)
    # One hold each, one transaction each.
    assert [len(charges(sessions, a)) for a in ids] == [1] * len(ids)
    assert len({load(sessions, a).tx_hash for a in ids}) == len(ids)
    settled = [settle(sessions, chain.rpc, small, hot, action_id) for action_id in ids]
    assert {a.status for a in settled} == {"confirmed"}
    # The hot wallet paid for one transaction per action, no more.
    paid = sum(
        to_units((a.system_fee or Decimal(0)) + (a.network_fee or Decimal(0))) for a in settled
    )
    assert hot_before - chain.rpc.gas_balance(hot.address) == paid
    verify(sessions)


def test_actions_the_node_cannot_price_stay_queued(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    tenant = new_tenant(sessions, relay_settings, "5")
    args = [hash160(tenant.signer), hash160(tenant.signer), 0, None]
    ids = [queue(sessions, dispatcher, tenant, "transfer", args) for _ in range(2)]
    with RpcProxy(relay_settings.neo_rpc_url) as proxy, NeoRpc([proxy.url], attempts=1) as down:
        proxy.modes["invokescript"] = HTTP_500
        with pytest.raises(RpcUnavailable):
            relay_actions.relay_action(sessions, down, relay_settings, hot, ids[0])
    assert [load(sessions, a).status for a in ids] == ["queued", "queued"]
    assert [charges(sessions, a) for a in ids] == [[], []]
    assert balance(sessions, tenant.account_id) == Decimal(5)
    # The retry of its job relays both.
    assert relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, ids[0]) == "sent"
    assert load(sessions, ids[1]).status == "pending"
    verify(sessions)


def cursor(sessions: sessionmaker[Session]) -> int | None:
    with sessions() as db:
        return db.scalar(select(ChainCursor.position).where(ChainCursor.name == "relay-action"))


def test_settlement_reads_each_block_once_and_asks_about_found_transactions_only(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    short = dataclasses.replace(relay_settings, action_valid_blocks=4)
    tenant = new_tenant(sessions, relay_settings, "10")
    args = [hash160(tenant.signer), hash160(tenant.signer), 0, None]
    lost = queue(sessions, dispatcher, tenant, "transfer", args)
    with RpcProxy(relay_settings.neo_rpc_url) as proxy, NeoRpc([proxy.url]) as lossy:
        proxy.modes["sendrawtransaction"] = SWALLOW
        assert relay_actions.relay_action(sessions, lossy, short, hot, lost) == "sent"
    landing = [queue(sessions, dispatcher, tenant, "transfer", args) for _ in range(3)]
    assert relay_actions.relay_action(sessions, chain.rpc, short, hot, landing[0]) == "sent"
    hashes = {a: load(sessions, a).tx_hash for a in [lost, *landing]}
    for action_id in landing:
        tx_hash = hashes[action_id]
        assert tx_hash is not None
        assert chain.rpc.wait_for_application_log(tx_hash, timeout=30) is not None
    heights: dict[int, int] = {}
    for action_id in landing:
        found = chain.rpc.transaction_height(hashes[action_id] or "")
        assert found is not None
        heights[action_id] = found

    with RpcProxy(relay_settings.neo_rpc_url) as proxy, NeoRpc([proxy.url]) as counted:
        counts = relay_actions.reconcile(sessions, counted, short, hot)
    assert counts["confirmed"] >= 3, counts
    assert [load(sessions, a).block_index for a in landing] == [heights[a] for a in landing]
    read = [params[0] for method, params in proxy.requests if method == "getblock"]
    assert len(read) == len(set(read)), "a block read twice in one pass"
    assert max(heights.values()) in read
    position = cursor(sessions)
    assert position is not None
    assert position >= max(heights.values())
    # The transaction in no block, not yet past its valid_until_block: nothing asked.
    asked = [params for method, params in proxy.requests if method != "getblock"]
    assert not [p for p in asked if hashes[lost] in p], asked
    assert load(sessions, lost).status == "pending"

    # The next pass starts after the cursor; once past its lifetime the lost one expires.
    with RpcProxy(relay_settings.neo_rpc_url) as proxy, NeoRpc([proxy.url]) as counted:
        action = settle(sessions, counted, short, hot, lost)
    assert action.status == "failed"
    assert "not included" in (action.failure_reason or ""), action.failure_reason
    assert all(params[0] > position for method, params in proxy.requests if method == "getblock")
    verify(sessions)


def test_the_cursor_stops_before_a_block_whose_outcome_no_node_tells(
    chain: Chain,
    relay_settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    hot: HotWallet,
) -> None:
    tenant = new_tenant(sessions, relay_settings, "5")
    args = [hash160(tenant.signer), hash160(tenant.signer), 0, None]
    action_id = queue(sessions, dispatcher, tenant, "transfer", args)
    assert relay_actions.relay_action(sessions, chain.rpc, relay_settings, hot, action_id) == "sent"
    tx_hash = load(sessions, action_id).tx_hash
    assert tx_hash is not None
    assert chain.rpc.wait_for_application_log(tx_hash, timeout=30) is not None
    height = chain.rpc.transaction_height(tx_hash)
    assert height is not None
    # A node that keeps no application logs: the block is found, its outcome is not told.
    with RpcProxy(relay_settings.neo_rpc_url) as proxy, NeoRpc([proxy.url]) as logless:
        proxy.modes["getapplicationlog"] = UNKNOWN
        counts = relay_actions.reconcile(sessions, logless, relay_settings, hot)
    assert counts["waiting"] >= 1, counts
    assert load(sessions, action_id).status == "pending"
    assert (cursor(sessions) or 0) < height
    action = settle(sessions, chain.rpc, relay_settings, hot, action_id)
    assert (action.status, action.block_index) == ("confirmed", height)
    assert (cursor(sessions) or 0) >= height
    verify(sessions)
