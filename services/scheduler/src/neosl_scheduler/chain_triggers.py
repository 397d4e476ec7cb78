"""Blockchain triggers: the contract events of a block that active triggers ask for.

The chain follower calls ``fire_block`` for every block inside the transaction that moves
its cursor past the block, so a block's events fire exactly when the block is passed: never
skipped, never twice (and the cause key ``chain:<tx>:<notification>`` guards retries).
The set of triggers is read again for every block: a trigger created, paused, resumed or
deleted takes effect from the next block the follower reads, without a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.models import Trigger
from neosl.onchain.blocks import Block
from neosl.triggers import firing, rules

log = logging.getLogger(__name__)


def active(session: Session) -> dict[tuple[str, str], list[tuple[int, dict[str, Any]]]]:
    """Active blockchain triggers by (contract, event name)."""
    rows = session.execute(
        select(Trigger.id, Trigger.trigger_config).where(
            Trigger.trigger_type == "blockchain", Trigger.status == "active"
        )
    ).all()
    by_event: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for trigger_id, config in rows:
        key = (config["contract_hash"], config["event_name"])
        by_event.setdefault(key, []).append((trigger_id, config))
    return by_event


def causes(
    block: Block, wanted: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]]
) -> list[firing.Cause]:
    """One cause per (trigger, notification) that matches, in block order."""
    found: list[firing.Cause] = []
    for n in block.notifications:
        candidates = wanted.get((n.contract, n.event_name))
        if not candidates:
            continue
        args = rules.event_args(n.state)
        if args is None:
            log.warning(
                "block %d: %s %s notification %d has malformed arguments; not fired",
                block.index,
                n.tx_hash,
                n.event_name,
                n.index,
            )
            continue
        for trigger_id, config in candidates:
            if not rules.matches(config, n.contract, n.event_name, args):
                continue
            detail = {
                "type": "blockchain",
                "trigger_id": trigger_id,
                "txid": n.tx_hash,
                "block_index": block.index,
                "block_time": block.time,
                "notification_index": n.index,
                "contract": n.contract,
                "event_name": n.event_name,
                "args": args,
            }
            found.append(firing.Cause(trigger_id, f"chain:{n.tx_hash}:{n.index}", detail))
    return found


def fire_block(session: Session, settings: Settings, dispatcher: Dispatcher, block: Block) -> int:
    """Fire the triggers ``block``'s events match (the caller commits); how many causes."""
    if not block.notifications:
        return 0
    wanted = active(session)
    if not wanted:
        return 0
    found = causes(block, wanted)
    firing.fire(session, settings, dispatcher, found)
    return len(found)
