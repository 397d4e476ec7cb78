"""Settling withdrawals through several RPC endpoints that disagree, on the real Neo node.

Every endpoint is an ``RpcProxy`` in front of the one real node, playing a node that is
down, lagging or forgetful. The rule under test (``neosl_gasbank.withdrawals``): a
withdrawal is refunded as "never included" only on the word of one node that was itself
``settle_margin_blocks`` past the ``valid_until_block`` before it said it does not know the
transaction; any node that knows the transaction decides; silence decides nothing.
Blocks come every 250 ms here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.gas import ledger
from neosl.models import GasAccount, Transaction
from neosl.neo.rpc import NeoRpc
from neosl_devstack import devnet
from neosl_devstack.servers import free_port
from neosl_devstack.stack import Stack
from neosl_gasbank import withdrawals
from neosl_gasbank.hot_wallet import HotWallet, load_hot_wallet
from tests import factories
from tests.chain import GAS
from tests.factories import make_user, new_account_key
from tests.rpcproxy import HTTP_500, LAG, STUCK, SWALLOW, UNKNOWN, RpcProxy
from tests.waiting import wait_until

pytestmark = pytest.mark.neo


MARGIN = 2


@pytest.fixture
def node(stack: Stack, settings: Settings) -> Iterator[NeoRpc]:
    """The real node, asked directly (what the chain really holds)."""
    if stack.neo is None:
        pytest.skip("NEO_RPC_URL names an outside node: its committee wallet is not ours to spend")
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        yield rpc


@pytest.fixture
def hot(node: NeoRpc, stack: Stack, settings: Settings) -> HotWallet:
    wallet = load_hot_wallet(settings)
    assert stack.neo is not None
    if node.gas_balance(wallet.address) < 50 * GAS:
        devnet.fund(
            node,
            stack.neo.committee_wallet_path,
            stack.neo.committee_wallet_password,
            wallet.address,
            100 * GAS,
        )
    return wallet


@pytest.fixture
def short(settings: Settings) -> Settings:
    # Short-lived transactions, so that "past valid_until_block + margin" comes in seconds.
    return dataclasses.replace(settings, withdraw_valid_blocks=8, settle_margin_blocks=MARGIN)


@pytest.fixture
def proxies(settings: Settings) -> Iterator[Callable[[], RpcProxy]]:
    """Starts endpoints in front of the real node; each one plays the node it is told to."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(RpcProxy(settings.neo_rpc_urls[0]))


@dataclasses.dataclass(frozen=True)
class Withdrawal:
    id: int
    account_id: int
    address: str


def new_withdrawal(sessions: sessionmaker[Session], credit: str, amount: str) -> Withdrawal:
    _, address = new_account_key()
    with sessions() as db:
        # Proven, so that the deposit below is credited to it.
        account = GasAccount(
            user_id=make_user(db).id,
            address=address,
            is_default=True,
            verified_at=dt.datetime.now(dt.UTC),
        )
        db.add(account)
        db.flush()
        factories.credit(db, account, credit)
        db.commit()
    with sessions() as db:
        locked = db.get_one(GasAccount, account.id, with_for_update=True)
        tx = ledger.debit_withdrawal(db, locked, Decimal(amount))
        db.commit()
        return Withdrawal(tx.id, account.id, address)


def row(sessions: sessionmaker[Session], transaction_id: int) -> Transaction:
    with sessions() as db:
        return db.get_one(Transaction, transaction_id)


def balance(sessions: sessionmaker[Session], account_id: int) -> Decimal:
    with sessions() as db:
        return db.get_one(GasAccount, account_id).balance


def verify(sessions: sessionmaker[Session]) -> list[ledger.Mismatch]:
    with sessions() as db:
        return ledger.verify(db)


def land(
    sessions: sessionmaker[Session],
    node: NeoRpc,
    settings: Settings,
    hot: HotWallet,
    withdrawal: Withdrawal,
) -> tuple[str, int, int]:
    """Send the withdrawal straight to the node and wait until the chain is past vub+margin.

    Returns its hash, the block that holds it and its valid_until_block.
    """
    assert withdrawals.send(sessions, node, settings, hot, withdrawal.id) == "sent"
    tx = row(sessions, withdrawal.id)
    assert tx.tx_hash is not None
    assert tx.valid_until_block is not None
    tx_hash, vub = tx.tx_hash, tx.valid_until_block
    wait_until(lambda: node.application_log(tx_hash), f"{tx_hash} in a block")
    height = node.transaction_height(tx_hash)
    assert height is not None
    past_vub_and_margin(node, vub)
    return tx_hash, height, vub


def past_vub_and_margin(node: NeoRpc, vub: int) -> None:
    wait_until(lambda: node.block_count() - 1 >= vub + MARGIN, "the chain to pass vub + margin")


def test_lagging_node_saying_unknown_does_not_refund_a_landed_transfer(
    node: NeoRpc,
    hot: HotWallet,
    short: Settings,
    sessions: sessionmaker[Session],
    proxies: Callable[[], RpcProxy],
) -> None:
    """The double payment: the height from an up-to-date node, "unknown" from a lagging one."""
    w = new_withdrawal(sessions, "5", "1.5")
    tx_hash, height, _ = land(sessions, node, short, hot, w)
    up_to_date, lagging = proxies(), proxies()
    up_to_date.modes["getapplicationlog"] = HTTP_500
    lagging.modes.update(getblockcount=LAG, getapplicationlog=UNKNOWN, gettransactionheight=UNKNOWN)
    lagging.lag_blocks = 10_000

    with NeoRpc([up_to_date.url, lagging.url], backoff=0) as rpc:
        counts = withdrawals.reconcile(sessions, rpc, short, hot)
        assert counts["waiting"] == 1, counts
        assert "getapplicationlog" in lagging.calls  # the failover did happen
        tx = row(sessions, w.id)
        assert tx.status == "pending", tx.failure_reason
        assert balance(sessions, w.account_id) == Decimal("3.5")

        # The up-to-date node serves logs again: confirmed, with its block.
        up_to_date.modes.clear()
        counts = withdrawals.reconcile(sessions, rpc, short, hot)
    assert counts["confirmed"] == 1, counts
    tx = row(sessions, w.id)
    assert (tx.status, tx.tx_hash, tx.block_index) == ("confirmed", tx_hash, height)
    assert node.gas_balance(w.address) == 150_000_000
    assert balance(sessions, w.account_id) == Decimal("3.5")
    assert verify(sessions) == []


def test_transfer_never_included_is_refunded_only_on_the_word_of_a_node_past_the_margin(
    node: NeoRpc,
    hot: HotWallet,
    short: Settings,
    sessions: sessionmaker[Session],
    proxies: Callable[[], RpcProxy],
) -> None:
    w = new_withdrawal(sessions, "3", "2")
    proxy = proxies()
    # The node accepts the transaction, which never reaches the chain.
    proxy.modes["sendrawtransaction"] = SWALLOW
    dead = f"http://127.0.0.1:{free_port()}"
    with NeoRpc([dead, proxy.url], backoff=0) as rpc:
        assert withdrawals.send(sessions, rpc, short, hot, w.id) == "sent"
        tx = row(sessions, w.id)
        assert tx.tx_hash is not None
        assert tx.valid_until_block is not None
        tx_hash, vub = tx.tx_hash, tx.valid_until_block
        past_vub_and_margin(node, vub)

        # Far behind: its "unknown" proves nothing.
        proxy.modes["getblockcount"] = LAG
        proxy.lag_blocks = 10_000
        assert withdrawals.reconcile(sessions, rpc, short, hot)["waiting"] == 1
        assert row(sessions, w.id).status == "pending"

        # Past valid_until_block, but one block short of the margin: still nothing.
        proxy.modes["getblockcount"] = STUCK
        proxy.block_count = vub + MARGIN  # the last block is vub + MARGIN - 1
        assert withdrawals.reconcile(sessions, rpc, short, hot)["waiting"] == 1
        assert row(sessions, w.id).status == "pending"

        # At vub + margin and it does not know the transaction: never included. The dead
        # endpoint, which tells nothing, does not stand in the way.
        proxy.block_count = vub + MARGIN + 1
        counts = withdrawals.reconcile(sessions, rpc, short, hot)
    assert counts["expired"] == 1, counts
    tx = row(sessions, w.id)
    assert tx.status == "failed"
    assert tx.failure_reason is not None
    assert f"valid_until_block {vub}" in tx.failure_reason
    assert node.application_log(tx_hash) is None
    assert node.gas_balance(w.address) == 0
    assert balance(sessions, w.account_id) == 3
    assert verify(sessions) == []


def test_any_node_that_knows_the_transaction_wins(
    node: NeoRpc,
    hot: HotWallet,
    short: Settings,
    sessions: sessionmaker[Session],
    proxies: Callable[[], RpcProxy],
) -> None:
    w = new_withdrawal(sessions, "4", "1")
    tx_hash, height, _ = land(sessions, node, short, hot, w)
    forgetful, logless, knowing = proxies(), proxies(), proxies()
    # Up to date, and says it never saw the transaction (a pruned or broken node).
    forgetful.modes.update(getapplicationlog=UNKNOWN, gettransactionheight=UNKNOWN)
    # Keeps no application logs, but knows the block that holds the transaction.
    logless.modes["getapplicationlog"] = UNKNOWN

    with NeoRpc([logless.url], backoff=0) as rpc:
        assert withdrawals.reconcile(sessions, rpc, short, hot)["waiting"] == 1
    assert row(sessions, w.id).status == "pending"

    with NeoRpc([forgetful.url, knowing.url], backoff=0) as rpc:
        counts = withdrawals.reconcile(sessions, rpc, short, hot)
    assert counts["confirmed"] == 1, counts
    assert "getapplicationlog" in forgetful.calls  # asked first, and said "unknown"
    tx = row(sessions, w.id)
    assert (tx.status, tx.tx_hash, tx.block_index) == ("confirmed", tx_hash, height)
    assert balance(sessions, w.account_id) == 3
    assert verify(sessions) == []
