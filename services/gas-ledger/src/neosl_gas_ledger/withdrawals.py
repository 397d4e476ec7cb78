"""Withdrawals: sign, send and settle, so that each one moves GAS on chain at most once.

The signed transaction is committed to the row *before* it is sent. Any later attempt
(a retry, a restart after a crash, a second worker) re-sends those same bytes, which have
the same hash, so the chain can include the transfer only once. A withdrawal is refunded
only when the chain proves the transfer did not happen: its execution FAULTed or returned
false, or its ``valid_until_block`` passed without it being included. A rejection by the
node is recorded and settled the same way, since another node may still hold the
transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import ledger
from neosl.config import Settings
from neosl.models import GasAccount, Transaction
from neosl.money import to_units
from neosl.neo.rpc import AlreadyKnown, ExpiredTransaction, NeoRpc, RpcError
from neosl.neo.transfers import (
    TransferWouldFail,
    build_gas_transfer,
    transfer_faulted,
    transfer_succeeded,
)
from neosl_ledger.hot_wallet import HotWallet

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
                return "failed"
            tx.raw_tx = base64.b64encode(signed.raw).decode()
            tx.tx_hash = signed.tx_hash
            tx.valid_until_block = signed.valid_until_block
            session.commit()
        raw = base64.b64decode(tx.raw_tx)
        tx_hash = tx.tx_hash

    try:
        rpc.send_raw_transaction(raw)
    except AlreadyKnown:
        pass
    except ExpiredTransaction:
        log.info("withdrawal %s: %s expired before it was sent", transaction_id, tx_hash)
        return "expired"
    except RpcError as exc:
        log.warning("withdrawal %s: node rejected %s: %s", transaction_id, tx_hash, exc)
        _note(sessions, transaction_id, f"the node rejected the transaction: {exc.message}")
        return "rejected"
    with sessions() as session:
        session.execute(
            update(Transaction)
            .where(Transaction.id == transaction_id, Transaction.sent_at.is_(None))
            .values(sent_at=dt.datetime.now(dt.UTC))
        )
        session.commit()
    return "sent"


def _note(sessions: sessionmaker[Session], transaction_id: int, reason: str) -> None:
    with sessions() as session:
        session.execute(
            update(Transaction)
            .where(Transaction.id == transaction_id, Transaction.status == "pending")
            .values(failure_reason=reason[:1000])
        )
        session.commit()


def reconcile(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    settings: Settings,
    wallet: HotWallet,
) -> Counter[str]:
    """Settle every pending withdrawal from what the chain says; (re-)send unsent ones.

    A row not yet signed, or signed but not known to be sent (a crash, a lost message, a
    rejection by the node), is sent again. That is always safe: signing happens once under
    the row lock, and sending the same bytes twice cannot move GAS twice.

    Raises:
        RpcUnavailable: no RPC endpoint answered (nothing changed for unsettled rows).
    """
    with sessions() as session:
        rows = session.execute(
            select(
                Transaction.id,
                Transaction.raw_tx.is_not(None).label("signed"),
                Transaction.sent_at,
                Transaction.tx_hash,
                Transaction.valid_until_block,
                Transaction.amount,
                Transaction.failure_reason,
                GasAccount.address,
            )
            .join(GasAccount, GasAccount.id == Transaction.account_id)
            .where(Transaction.type == "withdraw", Transaction.status == "pending")
            .order_by(Transaction.id)
        ).all()
    counts: Counter[str] = Counter()
    if not rows:
        return counts
    # Read the height before any log: a transaction absent from the chain once the height
    # passed its valid_until_block can never be included later.
    last_block = rpc.block_count() - 1
    for row in rows:
        if not row.signed or row.sent_at is None:
            counts[f"send_{send(sessions, rpc, settings, wallet, row.id)}"] += 1
            if not row.signed:
                continue
        # Read again: the row may have been signed just now by the re-send above.
        with sessions() as session:
            tx_hash, vub = session.execute(
                select(Transaction.tx_hash, Transaction.valid_until_block).where(
                    Transaction.id == row.id
                )
            ).one()
        if tx_hash is None or vub is None:
            continue
        units = to_units(row.amount)
        app_log = rpc.application_log(tx_hash)
        with sessions() as session:
            if app_log is not None:
                if transfer_succeeded(app_log, wallet.address, row.address, units):
                    ledger.confirm_withdrawal(session, row.id, rpc.transaction_height(tx_hash))
                    counts["confirmed"] += 1
                elif transfer_faulted(app_log, wallet.address, row.address, units):
                    ledger.fail_withdrawal(
                        session,
                        row.id,
                        "the transfer failed on chain (FAULT, or it returned false)",
                    )
                    counts["failed"] += 1
            elif last_block >= vub:
                reason = f"not included in a block by its valid_until_block {vub}"
                if row.failure_reason:
                    reason = f"{row.failure_reason}; {reason}"
                ledger.fail_withdrawal(session, row.id, reason)
                counts["expired"] += 1
            else:
                counts["waiting"] += 1
    return counts
