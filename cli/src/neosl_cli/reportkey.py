"""``neosl feeds report-key``: the report key the service signs with, next to the one the
PriceFeed contract checks reports against, and its publication on rotation.

Rotating the key: give the pricefeed worker a new ``NSL_REPORT_KEY`` (``neosl feeds
report-keygen``), then run ``neosl feeds report-key --publish`` with the same configuration:
it calls ``PriceFeed.set_report_key`` witnessed by the contract's publisher (the hot wallet,
``NSL_HOT_WALLET_WIF``), waits until the transaction is in a block, and reads the key back.
Publishing a key the contract holds already sends nothing, so the command may be run again
after any failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from neo3.core.cryptography import ECPoint
from neo3.core.types import UInt160
from neo3.vm import ScriptBuilder
from neo3.wallet.account import Account

from neosl.neo.rpc import NeoRpc
from neosl.neo.stack import decode_stack
from neosl.neo.transfers import TransferWouldFail, tested_transaction, transaction_hash

# How long a publication may wait for a block, and for how many blocks it is valid.
WAIT_SECONDS = 60.0
VALID_FOR_BLOCKS = 40


class PublishError(Exception):
    """The key could not be published (the message says why)."""


@dataclass(frozen=True)
class Published:
    tx_hash: str
    public_key: bytes


def contract_key(rpc: NeoRpc, contract: str) -> bytes:
    """The public key ``contract`` checks reports against (empty: none is set).

    Raises:
        PublishError: the contract does not answer ``report_key`` (not a PriceFeed with
            reports, or not deployed).
    """
    result = rpc.invoke_function(contract, "report_key")
    if result.get("state") != "HALT":
        raise PublishError(
            f"{contract} does not answer report_key: {result.get('exception') or 'no reason'}"
        )
    (value,) = decode_stack(result.get("stack"), bytes_as="hex")
    if not isinstance(value, str):
        raise PublishError(f"{contract} answered report_key with {value!r}")
    return bytes.fromhex(value)


def publish(rpc: NeoRpc, contract: str, wif: str, public_key: bytes) -> Published:
    """Have the publisher (the account of ``wif``) set ``public_key`` on ``contract``; returns
    once the transaction HALTed in a block.

    Raises:
        PublishError: the test invocation faulted (e.g. the WIF is not the publisher's), the
            transaction was not in a block in time, or it failed on chain.
        RpcError, RpcUnavailable: from the node.
        ValueError: ``wif`` is not a WIF.
    """
    script = (
        ScriptBuilder()  # type: ignore[no-untyped-call]
        .emit_contract_call_with_args(
            UInt160.from_string(contract.removeprefix("0x")),
            "set_report_key",
            [ECPoint.deserialize_from_bytes(public_key)],
        )
        .to_array()
    )
    try:
        tx = tested_transaction(
            rpc, Account.from_wif(wif), script, valid_for_blocks=VALID_FOR_BLOCKS
        )
    except TransferWouldFail as exc:
        raise PublishError(f"set_report_key would fail: {exc.reason}") from None
    raw = tx.to_array()
    tx_hash = transaction_hash(raw)
    rpc.send_raw_transaction(raw)
    log = rpc.wait_for_application_log(tx_hash, timeout=WAIT_SECONDS)
    if log is None:
        raise PublishError(f"{tx_hash} was not in a block after {WAIT_SECONDS:g} s; run it again")
    (execution,) = log.get("executions") or [{}]
    if execution.get("vmstate") != "HALT":
        raise PublishError(
            f"{tx_hash} failed on chain: {execution.get('exception') or 'no reason given'}"
        )
    return Published(tx_hash, public_key)
