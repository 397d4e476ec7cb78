"""GAS transfers against the real embedded Neo node (neo-go 0.120, 250 ms blocks).

What the node answers, as checked here:
- a transaction sent again while pooled: -503 "Transaction already exists in the memory
  pool"; once in a block: -501 "Inventory already exists on chain". Both are AlreadyKnown,
  and neither charges anything a second time.
- a transaction whose valid_until_block is at or below the current height: -510 "Expired
  transaction" ("transaction has expired: ValidUntilBlock = N, current height = N").
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from neo3.wallet.account import Account

from neosl.neo.rpc import AlreadyKnown, ExpiredTransaction, NeoRpc
from neosl.neo.transfers import (
    TransferWouldFail,
    build_gas_transfer,
    gas_transfers,
    transfer_succeeded,
)
from neosl_devstack import devnet
from neosl_devstack.stack import Stack

pytestmark = pytest.mark.neo

GAS = 10**8
WAIT = 10.0  # seconds; blocks come every 250 ms, so this is ~40 blocks of slack


@dataclass(frozen=True)
class Wallet:
    address: str
    wif: str


def new_wallet() -> Wallet:
    account = Account.create_new()
    assert account.private_key is not None
    return Wallet(account.address, Account.private_key_to_wif(account.private_key))


@pytest.fixture(scope="module")
def node(stack: Stack) -> Stack:
    if stack.neo is None:
        pytest.skip("NEO_RPC_URL names an outside node: no committee wallet to fund tests from")
    return stack


@pytest.fixture(scope="module")
def rpc(node: Stack) -> Iterator[NeoRpc]:
    with NeoRpc([node.started_env["NEO_RPC_URL"]]) as client:
        yield client


def fund(node: Stack, rpc: NeoRpc, address: str, amount: int) -> str:
    assert node.neo is not None
    return devnet.fund(
        rpc,
        node.neo.committee_wallet_path,
        node.neo.committee_wallet_password,
        address,
        amount,
        timeout=WAIT,
    )


@pytest.fixture(scope="module")
def sender(node: Stack, rpc: NeoRpc) -> Wallet:
    wallet = new_wallet()
    fund(node, rpc, wallet.address, 20 * GAS)
    return wallet


def included(rpc: NeoRpc, tx_hash: str) -> dict[str, Any]:
    log = rpc.wait_for_application_log(tx_hash, timeout=WAIT)
    assert log is not None, f"{tx_hash} not in a block after {WAIT} s"
    return log


def wait_for_block_count(rpc: NeoRpc, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while rpc.block_count() < count:
        assert time.monotonic() < deadline, f"block count {count} not reached in {WAIT} s"
        time.sleep(0.05)


def test_faucet_funds_a_fresh_account(node: Stack, rpc: NeoRpc) -> None:
    wallet = new_wallet()
    assert rpc.gas_balance(wallet.address) == 0
    tx_hash = fund(node, rpc, wallet.address, 3 * GAS + 7)
    assert rpc.gas_balance(wallet.address) == 3 * GAS + 7
    height = rpc.transaction_height(tx_hash)
    assert height is not None
    assert tx_hash in rpc.block_tx_hashes(height)


def test_transfer_between_fresh_accounts(rpc: NeoRpc, sender: Wallet) -> None:
    receiver = new_wallet()
    before = rpc.gas_balance(sender.address)
    signed = build_gas_transfer(rpc, sender.wif, receiver.address, 2 * GAS, valid_for_blocks=20)
    assert signed.system_fee > 0
    assert signed.network_fee > 0

    assert rpc.send_raw_transaction(signed.raw) == signed.tx_hash
    log = included(rpc, signed.tx_hash)

    assert transfer_succeeded(log, sender.address, receiver.address, 2 * GAS)
    (transfer,) = gas_transfers(log)
    assert (transfer.tx_hash, transfer.notification_index) == (signed.tx_hash, 0)
    assert rpc.gas_balance(receiver.address) == 2 * GAS
    fees = signed.system_fee + signed.network_fee
    assert rpc.gas_balance(sender.address) == before - 2 * GAS - fees


def test_sending_again_is_already_known_and_costs_nothing(rpc: NeoRpc, sender: Wallet) -> None:
    receiver = new_wallet()
    signed = build_gas_transfer(rpc, sender.wif, receiver.address, GAS, valid_for_blocks=20)
    rpc.send_raw_transaction(signed.raw)
    with pytest.raises(AlreadyKnown) as pooled:
        rpc.send_raw_transaction(signed.raw)
    # Usually still pooled (-503); a block may have sealed it in between (-501).
    assert pooled.value.code in (-503, -501)

    included(rpc, signed.tx_hash)
    with pytest.raises(AlreadyKnown) as on_chain:
        rpc.send_raw_transaction(signed.raw)
    assert on_chain.value.code == -501
    assert on_chain.value.message == "Inventory already exists on chain"
    assert rpc.gas_balance(receiver.address) == GAS


def test_identical_transfers_get_different_hashes_and_both_land(
    rpc: NeoRpc, sender: Wallet
) -> None:
    receiver = new_wallet()
    first = build_gas_transfer(rpc, sender.wif, receiver.address, GAS, valid_for_blocks=20)
    second = build_gas_transfer(rpc, sender.wif, receiver.address, GAS, valid_for_blocks=20)
    assert first.tx_hash != second.tx_hash
    rpc.send_raw_transaction(first.raw)
    rpc.send_raw_transaction(second.raw)
    for signed in (first, second):
        log = included(rpc, signed.tx_hash)
        assert transfer_succeeded(log, sender.address, receiver.address, GAS)
    assert rpc.gas_balance(receiver.address) == 2 * GAS


def test_transfer_beyond_the_balance_is_refused_before_sending(rpc: NeoRpc, node: Stack) -> None:
    poor = new_wallet()
    fund(node, rpc, poor.address, GAS)
    with pytest.raises(TransferWouldFail) as caught:
        build_gas_transfer(rpc, poor.wif, new_wallet().address, 5 * GAS, valid_for_blocks=20)
    assert caught.value.reason == f"{poor.address} has 1 GAS, needs 5 GAS plus fees"

    # Enough for the amount but not the fees: refused as well.
    with pytest.raises(TransferWouldFail, match=r"needs 1 GAS plus 0\.\d+ GAS fees"):
        build_gas_transfer(rpc, poor.wif, new_wallet().address, GAS, valid_for_blocks=20)

    # Had anything been sent, its fees would show within a couple of blocks.
    wait_for_block_count(rpc, rpc.block_count() + 2)
    assert rpc.gas_balance(poor.address) == GAS


def test_expired_transaction_is_refused_and_never_included(rpc: NeoRpc, sender: Wallet) -> None:
    receiver = new_wallet()
    signed = build_gas_transfer(rpc, sender.wif, receiver.address, GAS, valid_for_blocks=1)
    # The node refuses it once its height reaches valid_until_block.
    wait_for_block_count(rpc, signed.valid_until_block + 1)

    with pytest.raises(ExpiredTransaction) as caught:
        rpc.send_raw_transaction(signed.raw)
    assert caught.value.code == -510
    assert caught.value.message == "Expired transaction"
    assert f"ValidUntilBlock = {signed.valid_until_block}" in str(caught.value.data)
    assert rpc.application_log(signed.tx_hash) is None
    assert rpc.transaction_height(signed.tx_hash) is None
    assert rpc.gas_balance(receiver.address) == 0


def test_failover_to_the_real_node(node: Stack) -> None:
    assert node.neo is not None
    url = node.started_env["NEO_RPC_URL"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with NeoRpc([closed, url], timeout=2, backoff=0) as rpc:
        assert rpc.block_count() > 0
        assert rpc.url == url
        assert rpc.network_magic() == node.neo.network_magic
