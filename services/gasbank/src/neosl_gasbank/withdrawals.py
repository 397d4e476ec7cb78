"""Withdrawals: sign, send and settle, so that each one moves GAS on chain at most once.

The machinery is the relay's (``neosl_gasbank.relay``: sign once, store, re-send the same
bytes, settle from one node at a time); this module says how a withdrawal is signed (a GAS
transfer from the hot wallet to the account's address) and what its outcome means: a
withdrawal is refunded only when the chain proves the transfer did not happen: its execution
FAULTed or returned false, or its ``valid_until_block`` passed without it being included. A
rejection by the node is recorded and settled the same way, since another node may still
hold the transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.gas import ledger
from neosl.gas.money import to_units
from neosl.models import GasAccount, Transaction
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import (
    TransferWouldFail,
    build_gas_transfer,
    transfer_faulted,
    transfer_succeeded,
)
from neosl_gasbank import relay
from neosl_gasbank.hot_wallet import HotWallet

log = logging.getLogger(__name__)


def send(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    settings: Settings,
    wallet: HotWallet,
    transaction_id: int,
) -> str:
    """Sign (once) and broadcast a pending withdrawal; returns what happened.

    Raises:
        RpcUnavailable: no RPC endpoint answered (nothing is lost; retry later).
    """
    with sessions() as session:
        tx = session.get(Transaction, transaction_id, with_for_update=True)
        if tx is None or tx.type != "withdraw" or tx.status != "pending":
            return "settled"
        if tx.raw_tx is None:
            account = session.get_one(GasAccount, tx.account_id)
            try:
                signed = build_gas_transfer(
                    rpc,
                    wallet.wif,
                    account.address,
                    to_units(tx.amount),
                    valid_for_blocks=settings.withdraw_valid_blocks,
                )
            except TransferWouldFail as exc:
                session.rollback()
                # Nothing was signed, so nothing can reach the chain: refund now.
                ledger.fail_withdrawal(
                    session, transaction_id, f"the service's hot wallet cannot pay: {exc.reason}"
                )
                session.commit()
                return "failed"
            relay.store_signed(tx, signed.raw, signed.tx_hash, signed.valid_until_block)
            session.commit()
    return relay.broadcast(sessions, rpc, transaction_id, f"withdrawal {transaction_id}")


def reconcile(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    settings: Settings,
    wallet: HotWallet,
) -> Counter[str]:
    """Settle every pending withdrawal from what the chain says; (re-)send unsent ones.

    Raises:
        RpcUnavailable: as ``relay.settle``.
    """
    recipients: dict[int, tuple[str, int]] = {}

    def pending() -> list[relay.Pending]:
        with sessions() as session:
            rows = session.execute(
                select(
                    Transaction.id,
                    Transaction.raw_tx.is_not(None).label("signed"),
                    Transaction.sent_at.is_not(None).label("sent"),
                    Transaction.amount,
                    Transaction.failure_reason,
                    GasAccount.address,
                )
                .join(GasAccount, GasAccount.id == Transaction.account_id)
                .where(Transaction.type == "withdraw", Transaction.status == "pending")
                .order_by(Transaction.id)
            ).all()
        recipients.update({row.id: (row.address, to_units(row.amount)) for row in rows})
        return [relay.Pending(row.id, row.signed, row.sent, row.failure_reason) for row in rows]

    def judge(
        transaction_id: int, app_log: dict[str, Any]
    ) -> Literal["confirmed", "failed"] | None:
        # Each withdrawal is judged against its own recipient and amount.
        recipient, units = recipients[transaction_id]
        if transfer_succeeded(app_log, wallet.address, recipient, units):
            return "confirmed"
        if transfer_faulted(app_log, wallet.address, recipient, units):
            return "failed"
        return None

    return relay.settle(
        sessions,
        rpc,
        settings,
        pending,
        what="withdrawal",
        valid_blocks=settings.withdraw_valid_blocks,
        send=lambda tx_id: send(sessions, rpc, settings, wallet, tx_id),
        judge=judge,
        apply=_apply,
    )


def _apply(
    session: Session, transaction_id: int, verdict: relay.Verdict, reason: str | None
) -> None:
    if verdict.outcome == "confirmed":
        ledger.confirm_withdrawal(session, transaction_id, verdict.block_index)
    elif verdict.outcome == "failed":
        ledger.fail_withdrawal(
            session, transaction_id, "the transfer failed on chain (FAULT, or it returned false)"
        )
    else:
        ledger.fail_withdrawal(session, transaction_id, reason or "not included in a block")
