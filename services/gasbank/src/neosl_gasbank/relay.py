"""Relayed transactions: sign once, store, send the same bytes, settle from the chain.

Every transaction the service pays for (a withdrawal, a tenant's on-chain action) is a
``transactions`` row that holds its money, and, once signed, its serialized transaction
(``raw_tx``), hash and ``valid_until_block``. The signed bytes are committed to the row
*before* they are sent. Any later attempt (a retry, a restart after a crash, a second worker)
re-sends those same bytes, which have the same hash, so the chain includes the transaction
at most once. How a row is signed, and what its outcome means for the ledger, belongs to its
kind (``withdrawals``, ``actions``); this module is what they share:

- ``broadcast``, ``broadcast_many``: send signed rows' bytes (several at once), note when
  they were sent, record a rejection;
- ``verdict``: what the chain says about one transaction, every fact from one node;
- ``settle``: the pass over a kind's pending rows that (re-)sends unsent ones and settles
  the rest by block: the blocks since the kind's cursor are read once each (``Scanner``),
  a transaction one holds is settled with that block, in one database transaction with
  the cursor; a transaction in no block is asked about only once it may have expired.
  A pass over many pending rows costs a call per new block, not calls per row.

"Not included" is never pieced together from two nodes: with failover, the height could
come from an up-to-date node and "unknown transaction" from a lagging one, and a transaction
that did land would be settled as never sent. So every fact comes from one node at a time
(``NeoRpc.endpoints``): a node that knows the transaction decides, and "expired" needs a node
that was ``settle_margin_blocks`` past the ``valid_until_block`` before it said it does not
know the transaction, with no node knowing it. A node that does not answer says nothing;
without a decision, the row waits for the next pass.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.models import ChainCursor, Transaction
from neosl.neo.rpc import AlreadyKnown, ExpiredTransaction, NeoRpc, RpcError, RpcUnavailable

log = logging.getLogger(__name__)

# Transactions asked about at once in a settlement pass, and sent at once.
_ASKING_THREADS = 8
_SENDING_THREADS = 8
# Bulk updates whose criteria the session need not evaluate in Python.
_DML: dict[str, Any] = {"synchronize_session": False}

# What a transaction's application log means for its kind: None when it cannot tell.
Judge = Callable[[dict[str, Any]], Literal["confirmed", "failed"] | None]


class Verdict(NamedTuple):
    outcome: str  # "confirmed", "failed", "expired" or "waiting"
    # The block holding the transaction ("confirmed", "failed"), or the height of the node
    # that does not know it ("expired").
    block_index: int | None = None
    # The transaction's application log ("confirmed", "failed").
    application_log: dict[str, Any] | None = None


@dataclass(frozen=True)
class Pending:
    """One pending row of a kind, as ``settle`` needs it."""

    transaction_id: int
    signed: bool
    sent: bool
    failure_reason: str | None


def store_signed(tx: Transaction, raw: bytes, tx_hash: str, valid_until_block: int) -> None:
    """Put the signed bytes on the row (the caller commits before anything is sent)."""
    tx.raw_tx = base64.b64encode(raw).decode()
    tx.tx_hash = tx_hash
    tx.valid_until_block = valid_until_block


def broadcast(sessions: sessionmaker[Session], rpc: NeoRpc, transaction_id: int, what: str) -> str:
    """Send the row's stored bytes; "sent", "expired", "rejected" or "settled" (not pending
    or not signed: nothing to send).

    Raises:
        RpcUnavailable: no RPC endpoint answered (nothing is lost; retry later).
    """
    with sessions() as session:
        row = session.execute(
            select(Transaction.raw_tx, Transaction.tx_hash).where(
                Transaction.id == transaction_id, Transaction.status == "pending"
            )
        ).one_or_none()
    if row is None or row.raw_tx is None:
        return "settled"
    signed = {transaction_id: (base64.b64decode(row.raw_tx), row.tx_hash)}
    return broadcast_many(sessions, rpc, signed, what)[transaction_id]


def broadcast_many(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    signed: Mapping[int, tuple[bytes, str]],
    what: str,
) -> dict[int, str]:
    """Send transactions stored and committed on their rows (transaction id → its signed
    bytes and hash), several at once; what happened to each: "sent", "expired" or "rejected".
    The rows sent are marked so in one statement.

    Raises:
        RpcUnavailable: no RPC endpoint answered for one of them (those sent are marked;
            nothing is lost; retry later).
    """
    if not signed:
        return {}

    def send(item: tuple[int, tuple[bytes, str]]) -> str | RpcUnavailable:
        transaction_id, (raw, tx_hash) = item
        try:
            rpc.send_raw_transaction(raw)
        except AlreadyKnown:
            pass
        except ExpiredTransaction:
            log.info("%s: %s expired before it was sent", what, tx_hash)
            return "expired"
        except RpcUnavailable as exc:
            return exc
        except RpcError as exc:
            log.warning("%s: node rejected %s: %s", what, tx_hash, exc)
            with sessions() as session:
                session.execute(
                    update(Transaction)
                    .where(Transaction.id == transaction_id, Transaction.status == "pending")
                    .values(
                        failure_reason=f"the node rejected the transaction: {exc.message}"[:1000]
                    )
                )
                session.commit()
            return "rejected"
        return "sent"

    items = list(signed.items())
    if len(items) == 1:
        answers = [send(items[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(_SENDING_THREADS, len(items))) as threads:
            answers = list(threads.map(send, items))
    outcomes = {
        tx_id: answer
        for (tx_id, _), answer in zip(items, answers, strict=True)
        if isinstance(answer, str)
    }
    sent = [tx_id for tx_id, outcome in outcomes.items() if outcome == "sent"]
    if sent:
        with sessions() as session:
            session.execute(
                update(Transaction)
                .where(Transaction.id.in_(sent), Transaction.sent_at.is_(None))
                .values(sent_at=dt.datetime.now(dt.UTC)),
                execution_options=_DML,
            )
            session.commit()
    for answer in answers:
        if isinstance(answer, RpcUnavailable):
            raise answer
    return outcomes


@dataclass
class Node:
    """One endpoint during one settlement pass."""

    rpc: NeoRpc
    # Read before this node is asked about any transaction: a transaction it did not know
    # afterwards was in none of its blocks up to here.
    last_block: int
    answering: bool = True


def read_nodes(rpc: NeoRpc, what: str) -> list[Node]:
    """Every endpoint that tells its height, with that height.

    Raises:
        RpcUnavailable: no endpoint told its height.
    """
    found: list[Node] = []
    for endpoint in rpc.endpoints():
        try:
            found.append(Node(endpoint, endpoint.block_count() - 1))
        except (RpcError, RpcUnavailable) as exc:
            log.warning("%s: %s gives no facts this pass: %s", what, endpoint.url, exc)
    if not found:
        raise RpcUnavailable(
            f"getblockcount: none of {len(rpc.urls)} Neo RPC endpoint(s) answered; "
            f"no {what} was settled"
        )
    return found


def verdict(nodes: Sequence[Node], tx_hash: str, absent_after: int, judge: Judge) -> Verdict:
    """What the chain says about one transaction; every fact from one node.

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
            outcome = judge(app_log)
            if outcome is None:
                log.warning("relay: %s has an undecidable log for %s", node.rpc.url, tx_hash)
                continue
            block_index = node.rpc.transaction_height(tx_hash)
            if block_index is not None:
                return Verdict(outcome, block_index, app_log)
            log.warning("relay: %s has a log for %s but no block", node.rpc.url, tx_hash)
        except RpcUnavailable as exc:
            # One timeout per dead node and pass, not one per transaction.
            node.answering = False
            log.warning("relay: %s gives no facts this pass: %s", node.rpc.url, exc)
        except RpcError as exc:
            log.warning("relay: %s about %s: %s", node.rpc.url, tx_hash, exc)
    if absent_at is not None and not known:
        return Verdict("expired", absent_at)
    return Verdict("waiting")


def settle(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    settings: Settings,
    load: Callable[[], Sequence[Pending]],
    *,
    what: str,
    valid_blocks: int,
    send: Callable[[int], str],
    judge: Callable[[int, dict[str, Any]], Literal["confirmed", "failed"] | None],
    apply: Callable[[Session, int, Verdict, str | None], None],
) -> Counter[str]:
    """One pass over a kind's pending rows (``load`` reads them).

    A row not yet signed, or signed but not known to be sent (a crash, a lost message, a
    rejection by the node), is sent again with ``send`` (which signs first if needed). That
    is always safe: signing happens once under the row lock, and sending the same bytes
    twice cannot include them twice.

    Signed rows are then settled by block: the blocks since the kind's cursor (the last
    block a pass looked at) are read once each, and only a transaction found in one is
    asked about (``judge(transaction_id, application_log)``); a block's outcomes are
    written with the cursor in one database transaction (``apply(session, transaction_id,
    verdict, failure_reason)``). A row found in no block is asked about on its own only
    once it may have expired (``verdict``). ``valid_blocks``: a transaction's lifetime, so
    that its ``valid_until_block`` tells from which block on it may be in one.

    Raises:
        RpcUnavailable: no RPC endpoint told its height (nothing changed), or a (re-)send
            found no endpoint answering (rows settled before it stay settled).
    """
    counts: Counter[str] = Counter()
    if not load():
        return counts
    # The heights are read before the rows: a transaction in a block up to them was sent,
    # so its row was committed, before the rows are read (none is passed over unseen).
    nodes = read_nodes(rpc, what)
    rows = load()
    for row in rows:
        if not row.signed or not row.sent:
            counts[f"send_{send(row.transaction_id)}"] += 1
    # Read again: rows may have been signed just now by the re-sends above.
    with sessions() as session:
        signed = {
            r.id: r
            for r in session.execute(
                select(Transaction.id, Transaction.tx_hash, Transaction.valid_until_block).where(
                    Transaction.id.in_([row.transaction_id for row in rows]),
                    Transaction.status == "pending",
                    Transaction.tx_hash.is_not(None),
                    Transaction.valid_until_block.is_not(None),
                )
            )
        }
    todo = {row.transaction_id: row for row in rows if row.transaction_id in signed}
    if not todo:
        return counts
    by_hash = {signed[tx_id].tx_hash.lower(): tx_id for tx_id in todo}
    earliest = max(0, min(signed[tx_id].valid_until_block for tx_id in todo) - valid_blocks)
    scanner = Scanner(sessions, nodes, f"relay-{what}", what)

    def decide(transaction_id: int, absent_after: int) -> Verdict:
        s = signed[transaction_id]
        return verdict(nodes, s.tx_hash, absent_after, partial(judge, transaction_id))

    def settle_rows(session: Session, decided: dict[int, Verdict]) -> None:
        for transaction_id, found in decided.items():
            apply(session, transaction_id, found, _reason(todo[transaction_id], signed, found))
            counts[found.outcome] += 1
            del todo[transaction_id]

    # Found in a block: any node that knows it tells its outcome (never "expired" here).
    scanner.scan(earliest, by_hash, lambda tx_id: decide(tx_id, _NEVER), settle_rows)
    # Found in none of the blocks read: asked about only once it may have expired.
    margin = settings.settle_margin_blocks
    highest = max(node.last_block for node in nodes)
    expiring = [t for t in todo if signed[t].valid_until_block + margin <= highest]
    questions = [partial(decide, t, signed[t].valid_until_block + margin) for t in expiring]
    for transaction_id, found in zip(expiring, _ask_all(questions), strict=True):
        if found.outcome == "waiting":
            continue
        with sessions() as session:
            settle_rows(session, {transaction_id: found})
            session.commit()
    counts["waiting"] += len(todo)
    return counts


# An ``absent_after`` no node reaches: the transaction is known to be in a block.
_NEVER = 2**63
# Blocks read at once, and at most in one pass (a pass far behind catches up over several).
_READING_THREADS = 8
_SCAN_BLOCKS = 2000


def _reason(row: Pending, signed: Mapping[int, Any], found: Verdict) -> str | None:
    reason = row.failure_reason
    if found.outcome == "expired":
        expired = (
            f"not included in a block by its valid_until_block "
            f"{signed[row.transaction_id].valid_until_block} "
            f"(unknown to a node at block {found.block_index})"
        )
        reason = f"{reason}; {expired}" if reason else expired
    return reason


def _ask_all(questions: Sequence[Callable[[], Verdict]]) -> list[Verdict]:
    """The nodes are asked about several transactions at once: a pass over many rows is a
    few round trips long, not one per row."""
    if len(questions) <= 1:
        return [q() for q in questions]
    with ThreadPoolExecutor(max_workers=min(_ASKING_THREADS, len(questions))) as threads:
        return list(threads.map(lambda q: q(), questions))


class Scanner:
    """Reads a kind's blocks in order from its cursor (``chain_cursors``: the last block a
    pass looked at) on the first node that tells its height; blocks are final, so what one
    node's block holds, every node's does."""

    def __init__(
        self, sessions: sessionmaker[Session], nodes: Sequence[Node], cursor: str, what: str
    ) -> None:
        self.sessions = sessions
        self.node = nodes[0]
        self.cursor = cursor
        self.what = what

    def scan(
        self,
        earliest: int,
        by_hash: Mapping[str, int],
        decide: Callable[[int], Verdict],
        settle_rows: Callable[[Session, dict[int, Verdict]], None],
    ) -> None:
        """Read the blocks after the cursor (none before ``earliest``, the first block a
        pending transaction may be in) up to the node's height; for a block holding pending
        transactions, ``decide`` each and ``settle_rows`` them with the cursor, committed
        together. Stops before a block it cannot read or whose transactions no node can
        tell about yet (the next pass starts there)."""
        with self.sessions() as session:
            position = session.scalar(
                select(ChainCursor.position).where(ChainCursor.name == self.cursor)
            )
        first = max(earliest, (position + 1) if position is not None else 0)
        last = min(self.node.last_block, first + _SCAN_BLOCKS - 1)
        done = first - 1
        for chunk in range(first, last + 1, _READING_THREADS):
            indexes = list(range(chunk, min(chunk + _READING_THREADS, last + 1)))
            blocks = self._read(indexes)
            for index, hashes in zip(indexes, blocks, strict=True):
                if hashes is None:
                    self._save(done)
                    return
                found = [by_hash[h.lower()] for h in hashes if h.lower() in by_hash]
                if not found:
                    done = index
                    continue
                decided = dict(
                    zip(found, _ask_all([partial(decide, t) for t in found]), strict=True)
                )
                if any(v.outcome == "waiting" for v in decided.values()):
                    log.info("relay: %s in block %s has no outcome yet", self.what, index)
                    self._save(done)
                    return
                with self.sessions() as session:
                    settle_rows(session, decided)
                    self._move(session, index)
                    session.commit()
                done = index
        self._save(done)

    def _read(self, indexes: list[int]) -> list[list[str] | None]:
        """Each block's transaction hashes; None for one the node did not give."""

        def read(index: int) -> list[str] | None:
            try:
                return self.node.rpc.block_tx_hashes(index)
            except (RpcError, RpcUnavailable) as exc:
                log.warning("relay: %s gives no block %s: %s", self.node.rpc.url, index, exc)
                return None

        if len(indexes) == 1:
            return [read(indexes[0])]
        with ThreadPoolExecutor(max_workers=len(indexes)) as threads:
            return list(threads.map(read, indexes))

    def _save(self, position: int) -> None:
        if position < 0:
            return
        with self.sessions() as session:
            self._move(session, position)
            session.commit()

    def _move(self, session: Session, position: int) -> None:
        # Never backwards (a pass that started earlier may end later).
        session.execute(
            insert(ChainCursor)
            .values(name=self.cursor, position=position, chain_height=self.node.last_block + 1)
            .on_conflict_do_update(
                index_elements=[ChainCursor.name],
                set_={
                    "position": func.greatest(ChainCursor.position, position),
                    "chain_height": self.node.last_block + 1,
                },
            )
        )
