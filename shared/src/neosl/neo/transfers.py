"""GAS transfers: reading them out of application logs, and building signed ones.

Reading is pure (JSON in, values out) and never raises on odd input, since it runs over
whatever the chain holds. Building talks to a node through ``NeoRpc`` but does not send:
the caller records the transaction hash first, then sends, so a crash in between can be
recovered by sending the same bytes again (the node answers ``AlreadyKnown``).

Success of a NEP-17 transfer is three things together: the execution HALTed, ``transfer``
returned ``true`` and a matching ``Transfer`` notification exists. A transfer of more than
the balance HALTs with ``false`` and no notification, and its fees are still paid.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from neo3.core.types import UInt160
from neo3.network.payloads.transaction import Transaction
from neo3.network.payloads.verification import Signer, WitnessScope
from neo3.vm import ScriptBuilder
from neo3.wallet.account import Account, MultiSigContext

from neosl.neo.addresses import address_to_script_hash, script_hash_to_address, validate_address
from neosl.neo.rpc import GAS_CONTRACT as GAS_CONTRACT
from neosl.neo.rpc import NeoRpc

GAS_DECIMALS = 8

# Any non-zero value: neo-mamba refuses to sign a transaction with a zero fee, and the real
# fee can only be computed once the transaction carries a witness of the right shape.
_PLACEHOLDER_NETWORK_FEE = 1


@dataclass(frozen=True)
class GasTransfer:
    """One GAS ``Transfer`` notification.

    ``tx_hash`` is the log's ``txid`` (``blockhash`` for a block's log). ``from_address`` is
    None for a mint, ``to_address`` None for a burn. ``(tx_hash, notification_index)`` is
    unique and stable: the index counts every notification of the log, of any contract.
    """

    tx_hash: str
    notification_index: int
    from_address: str | None
    to_address: str | None
    amount: int


class _Malformed(Exception):
    pass


def _decode_account(item: object) -> str | None:
    if not isinstance(item, dict):
        raise _Malformed
    if item.get("type") == "Any":
        return None
    if item.get("type") not in ("ByteString", "Buffer"):
        raise _Malformed
    try:
        raw = base64.b64decode(str(item.get("value")), validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed from None
    if len(raw) != 20:
        raise _Malformed
    # Stack items hold the script hash little-endian, as UInt160 stores it.
    return script_hash_to_address(UInt160(raw))


def _decode_amount(item: object) -> int:
    if not isinstance(item, dict) or item.get("type") != "Integer":
        raise _Malformed
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Malformed
    try:
        amount = int(value)
    except ValueError:
        raise _Malformed from None
    if amount < 0:
        raise _Malformed
    return amount


def decode_gas_transfer(notification: object) -> tuple[str | None, str | None, int] | None:
    """``(from_address, to_address, amount)`` of one notification if it is a GAS ``Transfer``.

    None for anything else, malformed ones included (never raises). An address is None on
    the mint/burn side. Does not know the execution's state: only HALTed executions count.
    """
    if not isinstance(notification, dict):
        return None
    contract = notification.get("contract")
    if not isinstance(contract, str) or contract.lower() != GAS_CONTRACT:
        return None
    if notification.get("eventname") != "Transfer":
        return None
    state = notification.get("state")
    if not isinstance(state, dict) or state.get("type") != "Array":
        return None
    values = state.get("value")
    if not isinstance(values, list) or len(values) != 3:
        return None
    try:
        return _decode_account(values[0]), _decode_account(values[1]), _decode_amount(values[2])
    except _Malformed:
        return None


def _executions(application_log: object) -> list[dict[str, Any]]:
    if not isinstance(application_log, dict):
        return []
    executions = application_log.get("executions")
    if not isinstance(executions, list):
        return []
    return [e for e in executions if isinstance(e, dict)]


def gas_transfers(application_log: dict[str, Any]) -> list[GasTransfer]:
    """Every GAS ``Transfer`` of the log's HALTed executions, in log order.

    Malformed notifications are skipped; this never raises.
    """
    container = ""
    if isinstance(application_log, dict):
        container = str(application_log.get("txid") or application_log.get("blockhash") or "")
    found: list[GasTransfer] = []
    index = 0
    for execution in _executions(application_log):
        notifications = execution.get("notifications")
        if not isinstance(notifications, list):
            continue
        halted = execution.get("vmstate") == "HALT"
        for notification in notifications:
            # Counted even when skipped, so an index never moves.
            position = index
            index += 1
            if not halted:
                continue
            decoded = decode_gas_transfer(notification)
            if decoded is not None:
                found.append(GasTransfer(container, position, *decoded))
    return found


def application_execution(application_log: dict[str, Any]) -> dict[str, Any] | None:
    """The single Application execution of a transaction's log; None for anything else."""
    runs = [e for e in _executions(application_log) if e.get("trigger") == "Application"]
    # A transaction's log has exactly one; anything else is a block's log or garbage.
    return runs[0] if len(runs) == 1 else None


def _returned_true(execution: dict[str, Any]) -> bool:
    stack = execution.get("stack")
    return (
        isinstance(stack, list)
        and len(stack) == 1
        and isinstance(stack[0], dict)
        and stack[0].get("type") == "Boolean"
        and stack[0].get("value") is True
    )


def _has_transfer(
    application_log: dict[str, Any],
    from_address: str | None,
    to_address: str | None,
    amount: int | None,
) -> bool:
    return any(
        (from_address is None or t.from_address == from_address)
        and (to_address is None or t.to_address == to_address)
        and (amount is None or t.amount == amount)
        for t in gas_transfers(application_log)
    )


def transfer_succeeded(
    application_log: dict[str, Any], from_address: str, to_address: str, amount: int
) -> bool:
    """True only if the transaction HALTed, returned ``[true]`` and moved exactly this GAS.

    Never raises; a malformed log is not a success.
    """
    execution = application_execution(application_log)
    return (
        execution is not None
        and execution.get("vmstate") == "HALT"
        and _returned_true(execution)
        and _has_transfer(application_log, from_address, to_address, amount)
    )


def transfer_faulted(
    application_log: dict[str, Any],
    from_address: str | None = None,
    to_address: str | None = None,
    amount: int | None = None,
) -> bool:
    """True if the logged transaction definitively did not move the GAS.

    That is: it FAULTed, or it HALTed without returning ``[true]`` or without a matching
    GAS ``Transfer`` (matching the given fields; with none given, any GAS transfer). False
    for a log that is not a single transaction's (undecidable). Never raises.
    """
    execution = application_execution(application_log)
    if execution is None:
        return False
    state = execution.get("vmstate")
    if state == "FAULT":
        return True
    if state != "HALT":
        return False
    if not _returned_true(execution):
        return True
    return not _has_transfer(application_log, from_address, to_address, amount)


def format_gas(units: int) -> str:
    """``units`` (1e-8 GAS) as a plain decimal string: 120000000 -> "1.2"."""
    text = format(Decimal(units).scaleb(-GAS_DECIMALS), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class TransferWouldFail(Exception):
    """The transfer cannot succeed (test invocation or balance check); nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignedTransfer:
    """A signed transaction, ready for ``NeoRpc.send_raw_transaction``."""

    raw: bytes
    tx_hash: str
    valid_until_block: int
    system_fee: int
    network_fee: int

    @classmethod
    def of(cls, tx: Transaction) -> SignedTransfer:
        """The signed ``tx``, serialized, with its hash as the node shows it."""
        return cls(
            raw=tx.to_array(),
            tx_hash=f"0x{tx.hash()}",
            valid_until_block=tx.valid_until_block,
            system_fee=tx.system_fee,
            network_fee=tx.network_fee,
        )


SignFn = Callable[[Transaction, int], None]
"""Adds the sender's witness to a transaction, given the network magic."""


def transaction_hash(raw: bytes) -> str:
    """The hash of a serialized transaction, as the node shows it: "0x" + big-endian hex.

    Raises:
        ValueError: ``raw`` is not a serialized transaction.
    """
    try:
        tx = Transaction.deserialize_from_bytes(raw)
    except Exception as exc:
        # neo-mamba raises assorted errors (ValueError, struct.error, …) on bad input.
        raise ValueError(f"not a serialized transaction: {exc}") from exc
    return f"0x{tx.hash()}"


def build_gas_transfer(
    rpc: NeoRpc, wif: str, to_address: str, amount: int, *, valid_for_blocks: int
) -> SignedTransfer:
    """Build and sign (not send) a transfer of ``amount`` units of GAS from the WIF's account.

    The transaction is valid until block ``block_count() + valid_for_blocks`` and carries a
    random nonce, so two identical transfers get different hashes.

    Raises:
        ValueError: ``wif`` is not a valid WIF, ``amount`` is not a positive integer or
            ``valid_for_blocks`` is below 1.
        InvalidAddress: ``to_address`` is not a Neo N3 address.
        TransferWouldFail: the test invocation FAULTed or returned false, or the sender's
            balance does not cover the amount plus fees.
        RpcError, RpcUnavailable: from the node.
    """
    account = Account.from_wif(wif)

    def sign(tx: Transaction, magic: int) -> None:
        account.sign_tx(tx, magic)

    return _build(rpc, account.address, sign, to_address, amount, valid_for_blocks)


def multisig_signer(account: Account) -> SignFn:
    """A ``SignFn`` for a 1-of-n multi-signature account holding its key.

    Raises:
        ValueError: ``account`` is not a multi-signature account with key material. The
            returned function raises it when the account needs more than one signature.
    """
    if not account.is_multisig or account.is_watchonly:
        raise ValueError(f"{account.address} is not a multi-signature account with its key")

    def sign(tx: Transaction, magic: int) -> None:
        before = len(tx.witnesses)
        context = MultiSigContext()  # type: ignore[no-untyped-call]
        account.sign_multisig_tx(tx, context, magic)
        if len(tx.witnesses) == before:
            raise ValueError(f"{account.address} needs more than one signature")

    return sign


def build_multisig_gas_transfer(
    rpc: NeoRpc, account: Account, to_address: str, amount: int, *, valid_for_blocks: int
) -> SignedTransfer:
    """As ``build_gas_transfer``, from a 1-of-n multi-signature account holding its key.

    Raises:
        ValueError: ``account`` is not a multi-signature account with key material, or needs
            more than one signature; otherwise as ``build_gas_transfer``.
        InvalidAddress, TransferWouldFail, RpcError, RpcUnavailable: as ``build_gas_transfer``.
    """
    return _build(
        rpc, account.address, multisig_signer(account), to_address, amount, valid_for_blocks
    )


# How old the height a transaction's validity counts from may be (``NeoRpc.recent_block_count``).
_HEIGHT_MAX_AGE = 1.0


def signed_transaction(
    rpc: NeoRpc,
    sender: UInt160,
    sign: SignFn,
    script: bytes,
    *,
    system_fee: int,
    valid_for_blocks: int,
    signers: Sequence[Signer] | None = None,
) -> Transaction:
    """A transaction running ``script``, sent and paid by ``sender`` and signed by ``sign``.

    The sender signs with scope CalledByEntry, unless ``signers`` (the sender first) says
    otherwise; ``sign`` adds every signer's witness, in their order. The network fee is the
    node's price for the signed transaction; the nonce is random, so two identical scripts
    get different hashes. The transaction is valid until block ``block_count() +
    valid_for_blocks``, with a block count read at most ``_HEIGHT_MAX_AGE`` ago (a burst of
    transactions asks for it once). Checks neither the script (test-invoke it first) nor the
    sender's balance.

    Raises:
        RpcError, RpcUnavailable: from the node.
        ValueError: from ``sign``.
    """
    tx = Transaction(
        version=0,
        # neo-mamba's default nonce is a constant: identical transactions would share a hash
        # and the second would be refused as already known.
        nonce=secrets.randbits(32),
        system_fee=system_fee,
        network_fee=_PLACEHOLDER_NETWORK_FEE,
        valid_until_block=rpc.recent_block_count(_HEIGHT_MAX_AGE) + valid_for_blocks,
        attributes=[],
        signers=list(signers) if signers else [Signer(sender, WitnessScope.CALLED_BY_ENTRY)],
        script=script,
    )
    magic = rpc.network_magic()
    # neo-go prices the witnesses it is given (an unsigned transaction fails with -508):
    # sign once to give them their shape, price, then sign again over the real fee.
    sign(tx, magic)
    tx.network_fee = rpc.calculate_network_fee(tx.to_array())
    tx.witnesses = []
    sign(tx, magic)
    return tx


def tested_transaction(
    rpc: NeoRpc, account: Account, script: bytes, *, valid_for_blocks: int
) -> Transaction:
    """A transaction running ``script`` sent, paid and signed by a single-key ``account``
    (scope CalledByEntry), its system fee what a test invocation of it consumed.

    Raises:
        TransferWouldFail: the test invocation did not HALT (its exception is the reason);
            nothing was signed.
        RpcError, RpcUnavailable: from the node.
    """
    sender = account.script_hash
    test = rpc.invoke_script(script, [{"account": f"0x{sender}", "scopes": "CalledByEntry"}])
    if test.get("state") != "HALT":
        raise TransferWouldFail(
            f"the test invocation faulted: {test.get('exception') or 'no reason given'}"
        )

    def sign(tx: Transaction, magic: int) -> None:
        account.sign_tx(tx, magic)

    return signed_transaction(
        rpc,
        sender,
        sign,
        script,
        system_fee=max(int(test["gasconsumed"]), 1),
        valid_for_blocks=valid_for_blocks,
    )


def _build(
    rpc: NeoRpc,
    sender: str,
    sign: SignFn,
    to_address: str,
    amount: int,
    valid_for_blocks: int,
) -> SignedTransfer:
    validate_address(to_address)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive whole number of units, got {amount!r}")
    if valid_for_blocks < 1:
        raise ValueError(f"valid_for_blocks must be at least 1, got {valid_for_blocks}")
    sender_hash = address_to_script_hash(sender)
    gas = UInt160.from_string(GAS_CONTRACT[2:])
    script = (
        ScriptBuilder()  # type: ignore[no-untyped-call]
        .emit_contract_call_with_args(
            gas, "transfer", [sender_hash, address_to_script_hash(to_address), amount, None]
        )
        .to_array()
    )

    # calculatenetworkfee and the system fee do not check that the script works.
    test = rpc.invoke_script(script, [{"account": f"0x{sender_hash}", "scopes": "CalledByEntry"}])
    if test.get("state") != "HALT":
        raise TransferWouldFail(
            f"test invocation of GAS.transfer faulted: {test.get('exception') or 'no reason given'}"
        )
    if not _returned_true(test):
        balance = rpc.gas_balance(sender)
        if balance < amount:
            raise TransferWouldFail(
                f"{sender} has {format_gas(balance)} GAS, needs {format_gas(amount)} GAS plus fees"
            )
        raise TransferWouldFail("GAS.transfer returned false in a test invocation")
    tx = signed_transaction(
        rpc,
        sender_hash,
        sign,
        script,
        system_fee=int(test["gasconsumed"]),
        valid_for_blocks=valid_for_blocks,
    )

    balance = rpc.gas_balance(sender)
    fees = tx.system_fee + tx.network_fee
    if balance < amount + fees:
        raise TransferWouldFail(
            f"{sender} has {format_gas(balance)} GAS, needs {format_gas(amount)} GAS "
            f"plus {format_gas(fees)} GAS fees"
        )
    return SignedTransfer.of(tx)
