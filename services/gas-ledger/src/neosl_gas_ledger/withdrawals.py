"""Withdrawals: sign, send and settle, so that each one moves GAS on chain at most once.

The signed transaction is committed to the row *before* it is sent. Any later attempt
(a retry, a restart after a crash, a second worker) re-sends those same bytes, which have
the same hash, so the chain can include the transfer only once. A withdrawal is refunded
only when the chain proves the transfer did not happen: its execution FAULTed or returned
false, or its ``valid_until_block`` passed without it being included. A rejection by the
node is recorded and settled the same way, since another node may still hold the
transaction.

"Not included" is never pieced together from two nodes: with failover, the height could
come from an up-to-date node and "unknown transaction" from a lagging one, and GAS that
did leave would be refunded. So every fact used to settle a withdrawal comes from one
node at a time (``NeoRpc.endpoints``): a node that knows the transaction decides, and a
refund for "not included" needs a node that was ``settle_margin_blocks`` past the
``valid_until_block`` before it said it does not know the transaction, with no node
knowing it. A node that does not answer says nothing; without a decision, the withdrawal
waits for the next pass.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import balances
from neosl.config import Settings
from neosl.models import GasAccount, Transaction
from neosl.money import to_units
from neosl.neo.rpc import AlreadyKnown, ExpiredTransaction, NeoRpc, RpcError, RpcUnavailable
from neosl.neo.transfers import (
    TransferWouldFail,
    build_gas_transfer,
    transfer_faulted,
    transfer_succeeded,
)
from neosl_gas_ledger.hot_wallet import HotWallet

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
                balances.fail_withdrawal(
                    session, transaction_id, f"the service's hot wallet cannot pay: {exc.reason}"
                )
                session.commit()
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
    the row lock, and sending the same bytes twice cannot move GAS twice. How a sent row is
    settled is in the module docstring; the counts say how many rows went which way.

    Raises:
        RpcUnavailable: no RPC endpoint told its height (nothing changed), or a (re-)send
            found no endpoint answering (rows settled before it stay settled).
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
    nodes = _nodes(rpc)
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
        verdict = _verdict(
            nodes,
            tx_hash,
            vub + settings.settle_margin_blocks,
            wallet.address,
            row.address,
            to_units(row.amount),
        )
        if verdict.outcome == "waiting":
            counts["waiting"] += 1
            continue
        with sessions() as session:
            if verdict.outcome == "confirmed":
                balances.confirm_withdrawal(session, row.id, verdict.block_index)
            elif verdict.outcome == "failed":
                balances.fail_withdrawal(
                    session, row.id, "the transfer failed on chain (FAULT, or it returned false)"
                )
            else:
                reason = (
                    f"not included in a block by its valid_until_block {vub} (unknown to a "
                    f"node at block {verdict.block_index})"
                )
                if row.failure_reason:
                    reason = f"{row.failure_reason}; {reason}"
                balances.fail_withdrawal(session, row.id, reason)
            session.commit()
        counts[verdict.outcome] += 1
    return counts


@dataclass
class _Node:
    """One endpoint during one reconcile pass."""

    rpc: NeoRpc
    # Read before this node is asked about any transaction: a transaction it did not know
    # afterwards was in none of its blocks up to here.
    last_block: int
    answering: bool = True


class _Verdict(NamedTuple):
    outcome: str  # "confirmed", "failed", "expired" or "waiting"
    # The block holding the transaction ("confirmed"), or the height of the node that
    # does not know it ("expired").
    block_index: int | None = None


def _nodes(rpc: NeoRpc) -> list[_Node]:
    """Every endpoint that tells its height, with that height.

    Raises:
        RpcUnavailable: no endpoint told its height.
    """
    nodes: list[_Node] = []
    for endpoint in rpc.endpoints():
        try:
            nodes.append(_Node(endpoint, endpoint.block_count() - 1))
        except (RpcError, RpcUnavailable) as exc:
            log.warning("withdrawals: %s gives no facts this pass: %s", endpoint.url, exc)
    if not nodes:
        raise RpcUnavailable(
            f"getblockcount: none of {len(rpc.urls)} Neo RPC endpoint(s) answered; "
            "no withdrawal was settled"
        )
    return nodes


def _verdict(
    nodes: list[_Node],
    tx_hash: str,
    absent_after: int,
    sender: str,
    recipient: str,
    units: int,
) -> _Verdict:
    """What the chain says about one withdrawal's transaction; every fact from one node.

    ``absent_after`` is the ``valid_until_block`` plus the settlement margin: only a node
    at that block or later may say the transaction was never included. Never raises: a
    node that fails gives no facts (and is not asked again this pass if it did not answer).
    """
    known = False
    absent_at: int | None = None
    for node in nodes:
        if not node.answering:
            continue
        try:
            app_log = node.rpc.application_log(tx_hash)
            if app_log is None:
                # A node that keeps no application logs still knows the transaction's
                # block: only a node that knows neither may prove it was never included.
                if node.last_block >= absent_after:
                    if node.rpc.transaction_height(tx_hash) is None:
                        absent_at = max(absent_at or 0, node.last_block)
                    else:
                        known = True
                continue
            known = True
            if transfer_succeeded(app_log, sender, recipient, units):
                block_index = node.rpc.transaction_height(tx_hash)
                if block_index is not None:
                    return _Verdict("confirmed", block_index)
                log.warning("withdrawals: %s has a log for %s but no block", node.rpc.url, tx_hash)
            elif transfer_faulted(app_log, sender, recipient, units):
                return _Verdict("failed")
            else:
                log.warning("withdrawals: %s has an undecidable log for %s", node.rpc.url, tx_hash)
        except RpcUnavailable as exc:
            # One timeout per dead node and pass, not one per withdrawal.
            node.answering = False
            log.warning("withdrawals: %s gives no facts this pass: %s", node.rpc.url, exc)
        except RpcError as exc:
            log.warning("withdrawals: %s about %s: %s", node.rpc.url, tx_hash, exc)
    if absent_at is not None and not known:
        return _Verdict("expired", absent_at)
    return _Verdict("waiting")
