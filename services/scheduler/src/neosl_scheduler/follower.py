"""The chain follower: every block once, in order, from a durable cursor in PostgreSQL.

Blocks are passed in database transactions: their matching notifications are stored (and
their blockchain triggers fired) and the cursor moves past them together, so after a crash
or an RPC outage the follower resumes at the first block it had not finished, skipping none
and storing none twice. The cursor row is locked ``FOR UPDATE SKIP LOCKED`` while blocks
are processed, so a second follower
(another worker, a duplicate beat) simply finds nothing to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.models import ChainCursor
from neosl.neo.rpc import NeoRpc, RpcError, RpcUnavailable
from neosl.onchain.blocks import (
    FOLLOWER_CURSOR,
    MissingApplicationLog,
    Subscription,
    agree,
    read_block,
    store_block,
)
from neosl_scheduler import chain_triggers

log = logging.getLogger(__name__)

# Blocks passed per transaction while catching up: a commit per block would cost more than
# reading the block (fsync); a few dozen keep the cursor's lock short.
BLOCKS_PER_TRANSACTION = 25


@dataclass
class FollowResult:
    blocks: int = 0
    events: int = 0
    # Blockchain-trigger causes found (each fires once; see chain_triggers).
    fired: int = 0
    height: int | None = None
    position: int | None = None
    busy: bool = False
    notified: set[str] = field(default_factory=set)

    @property
    def lag(self) -> int | None:
        if self.height is None or self.position is None:
            return None
        return max(self.height - self.position, 0)


def follow(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    subs: list[Subscription],
    dispatcher: Dispatcher | None,
    *,
    batch: int = 100,
    start_block: int | None = None,
    triggers: Settings | None = None,
) -> FollowResult:
    """Process up to ``batch`` new blocks; subscribers that got events are told after each.

    With ``triggers`` (the settings to fire them with) and a dispatcher, blockchain triggers
    fire for each block's matching events in the block's own transaction.

    On the very first run the cursor starts at ``start_block`` (default: the current
    height, so history before the service existed is not scanned; ``rescan`` reads it).

    Raises:
        Disagreement: ``subs`` differ from what this deployment follows (nothing is read,
            the cursor stays: no block is passed without its notifications).
        RpcUnavailable: no endpoint answered (the cursor stays at the unfinished block).
        MissingApplicationLog: as ``neosl.onchain.blocks.read_block`` (the cursor stays at that
            block).
    """
    agree(sessions, subs)
    result = FollowResult()
    height = rpc.block_count()
    result.height = height
    with sessions() as session:
        # With the height it was created at: the cursor is never seen without one.
        session.execute(
            insert(ChainCursor)
            .values(
                name=FOLLOWER_CURSOR,
                position=height if start_block is None else start_block,
                chain_height=height,
            )
            .on_conflict_do_nothing()
        )
        session.commit()
    left = batch
    while left > 0:
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
            cursor.chain_height = height
            if cursor.position >= height:
                session.commit()
                return result
            in_transaction = 0
            try:
                while in_transaction < BLOCKS_PER_TRANSACTION and left > 0:
                    if cursor.position >= height:
                        break
                    # Read before anything of the block is written: if the node fails here,
                    # the blocks done so far in this transaction are kept (below).
                    block = read_block(rpc, cursor.position)
                    matches, _ = store_block(session, block, subs, dispatcher)
                    if triggers is not None and dispatcher is not None:
                        result.fired += chain_triggers.fire_block(
                            session, triggers, dispatcher, block
                        )
                    cursor.position += 1
                    in_transaction += 1
                    left -= 1
                    result.blocks += 1
                    result.events += len(matches)
                    result.notified.update(m.subscription.name for m in matches)
            except (RpcUnavailable, RpcError, MissingApplicationLog):
                session.commit()
                raise
            session.commit()
            result.position = cursor.position
    return result
