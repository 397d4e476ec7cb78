"""The chain follower: every block once, in order, from a durable cursor in PostgreSQL.

Each block is one database transaction: its matching notifications are stored and the
cursor moves past it together, so after a crash or an RPC outage the follower resumes at
the first block it had not finished, skipping none and storing none twice. The cursor row
is locked ``FOR UPDATE SKIP LOCKED`` while a block is processed, so a second follower
(another worker, a duplicate beat) simply finds nothing to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from neosl.chain import FOLLOWER_CURSOR, Subscription
from neosl.dispatch import Dispatcher
from neosl.models import ChainCursor, ChainEvent
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import decode_gas_transfer

log = logging.getLogger(__name__)


class MissingApplicationLog(RuntimeError):
    """The node answered, but without the data needed; the block is retried later."""


@dataclass
class FollowResult:
    blocks: int = 0
    events: int = 0
    height: int | None = None
    position: int | None = None
    busy: bool = False
    notified: set[str] = field(default_factory=set)

    @property
    def lag(self) -> int | None:
        if self.height is None or self.position is None:
            return None
        return max(self.height - self.position, 0)


@dataclass(frozen=True)
class Match:
    subscription: Subscription
    event: dict[str, Any]


def _matches(sub: Subscription, notification: dict[str, Any]) -> bool:
    if (
        notification.get("contract") != sub.contract
        or notification.get("eventname") != sub.event_name
    ):
        return False
    if sub.to_address is None:
        return True
    decoded = decode_gas_transfer(notification)
    return decoded is not None and decoded[1] == sub.to_address


def block_matches(rpc: NeoRpc, index: int, subs: list[Subscription]) -> list[Match]:
    """The notifications of block ``index`` that some subscription wants.

    Only HALT executions count (a FAULTed transaction's notifications did not happen).
    ``notification_index`` counts every notification of the transaction, so
    (tx_hash, notification_index) names one notification for good.

    Raises:
        RpcUnavailable: no endpoint answered.
        MissingApplicationLog: the node keeps no log for a transaction of the block.
    """
    found: list[Match] = []
    for tx_hash in rpc.block_tx_hashes(index):
        app_log = rpc.application_log(tx_hash)
        if app_log is None:
            # A transaction in a block always has a log on a node that keeps them; skipping
            # it could lose a deposit, so the block is not passed until the log is there.
            raise MissingApplicationLog(
                f"block {index}: the node has no application log for {tx_hash} "
                "(is its ApplicationLogs plugin / SaveInvocations enabled?)"
            )
        position = 0
        for execution in app_log.get("executions") or []:
            notifications = execution.get("notifications") or []
            halted = execution.get("vmstate") == "HALT"
            for notification in notifications:
                if halted and isinstance(notification, dict):
                    for sub in subs:
                        if _matches(sub, notification):
                            found.append(
                                Match(
                                    sub,
                                    {
                                        "block_index": index,
                                        "tx_hash": tx_hash,
                                        "notification_index": position,
                                        "contract": notification["contract"],
                                        "event_name": notification["eventname"],
                                        "state": notification.get("state"),
                                    },
                                )
                            )
                            break
                position += 1
    return found


def follow(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    subs: list[Subscription],
    dispatcher: Dispatcher | None,
    *,
    batch: int = 100,
    start_block: int | None = None,
) -> FollowResult:
    """Process up to ``batch`` new blocks; then tell subscribers that got events.

    On the very first run the cursor starts at ``start_block`` (default: the current
    height, so history before the service existed is not scanned).

    Raises:
        RpcUnavailable: no endpoint answered (the cursor stays at the unfinished block).
    """
    result = FollowResult()
    height = rpc.block_count()
    result.height = height
    with sessions() as session:
        session.execute(
            insert(ChainCursor)
            .values(name=FOLLOWER_CURSOR, position=height if start_block is None else start_block)
            .on_conflict_do_nothing()
        )
        session.commit()
    try:
        for _ in range(batch):
            with sessions() as session:
                cursor = session.scalars(
                    select(ChainCursor)
                    .where(ChainCursor.name == FOLLOWER_CURSOR)
                    .with_for_update(skip_locked=True)
                ).one_or_none()
                if cursor is None:
                    result.busy = True
                    return result
                result.position = cursor.position
                if cursor.position >= height:
                    cursor.chain_height = height
                    session.commit()
                    return result
                matches = block_matches(rpc, cursor.position, subs)
                for match in matches:
                    session.execute(
                        insert(ChainEvent)
                        .values(**match.event)
                        .on_conflict_do_nothing(index_elements=["tx_hash", "notification_index"])
                    )
                cursor.position += 1
                cursor.chain_height = height
                session.commit()
                result.position = cursor.position
                result.blocks += 1
                result.events += len(matches)
                result.notified.update(m.subscription.name for m in matches)
        return result
    finally:
        if dispatcher is not None:
            for sub in subs:
                if sub.name in result.notified:
                    dispatcher.send(sub.notify)
