"""Chain subscriptions: which notifications the chain follower keeps, and whom it tells.

The follower (owned by the scheduler service) reads every block once, from a durable
cursor, and stores the notifications some subscription asks for in ``chain_events``; once
that block's transaction has committed, each interested subscriber gets its ``notify`` job.
A subscriber keeps its own cursor over ``chain_events`` (see the gas ledger's deposits), so
it can be down, slow or restarted without the follower waiting for it or anything being
lost or applied twice.

To subscribe, add a ``Subscription`` to ``subscriptions()``.

Reading a block (``read_block``, ``block_matches``, ``store_block``) lives here, shared by
the follower's cursor loop (``neosl_scheduler.follower``) and the operator's ``rescan`` of a range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas import bank
from neosl.models import ChainEvent
from neosl.neo.rpc import NeoRpc
from neosl.neo.transfers import GAS_CONTRACT, decode_gas_transfer
from neosl.onchain.deployment import agree_on_followed

FOLLOWER_CURSOR = "follower"
# pg_advisory_xact_lock key held by whoever writes chain_events (see store_block).
_CHAIN_EVENTS_WRITE_LOCK = 0x6E736C_01
# The gas bank's subscription: GAS transfers to the deposit address.
DEPOSITS = "ledger-deposits"


@dataclass(frozen=True)
class Subscription:
    name: str
    contract: str  # "0x" + big-endian hex, as the node shows it
    event_name: str
    notify: jobs.Job
    # For NEP-17 Transfer events: keep only transfers to this address.
    to_address: str | None = None

    @property
    def target(self) -> str:
        """What this subscription records, as the deployment writes it down."""
        what = f"{self.event_name}@{self.contract}"
        return f"{what} to {self.to_address}" if self.to_address else what


def subscriptions(settings: Settings) -> list[Subscription]:
    """What the chain follower records, for these settings.

    Raises:
        ConfigError: the gas bank is on but NSL_DEPOSIT_ADDRESS is not set (a follower
            without it would pass blocks and never record their deposits).
    """
    subs = []
    deposit_address = bank.deposit_address(settings)
    if deposit_address is not None:
        subs.append(
            Subscription(
                name=DEPOSITS,
                contract=GAS_CONTRACT,
                event_name="Transfer",
                notify=jobs.APPLY_DEPOSITS,
                to_address=deposit_address,
            )
        )
    return subs


class MissingApplicationLog(RuntimeError):
    """The node answered, but without the data needed; the block is retried later."""


@dataclass(frozen=True)
class Match:
    subscription: Subscription
    event: dict[str, Any]


@dataclass(frozen=True)
class Notification:
    """One notification of a HALTed execution in a block."""

    tx_hash: str
    # Its position among every notification of its transaction, so (tx_hash, index)
    # names it for good.
    index: int
    contract: str
    event_name: str
    state: Any


@dataclass(frozen=True)
class Block:
    index: int
    time: int | None  # milliseconds since the epoch, as the node gives it
    notifications: list[Notification]


def _matches(sub: Subscription, notification: Notification) -> bool:
    if notification.contract != sub.contract or notification.event_name != sub.event_name:
        return False
    if sub.to_address is None:
        return True
    decoded = decode_gas_transfer(
        {
            "contract": notification.contract,
            "eventname": notification.event_name,
            "state": notification.state,
        }
    )
    return decoded is not None and decoded[1] == sub.to_address


def read_block(rpc: NeoRpc, index: int) -> Block:
    """Block ``index`` with the notifications of its HALTed executions, in order.

    Only HALT executions count (a FAULTed transaction's notifications did not happen), but
    ``Notification.index`` counts every notification of the transaction.

    Raises:
        RpcUnavailable: no endpoint answered.
        MissingApplicationLog: the node keeps no log for a transaction of the block.
    """
    block = rpc.block(index)
    raw_time = block.get("time")
    found: list[Notification] = []
    for tx in block.get("tx") or []:
        tx_hash = str(tx["hash"])
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
            halted = execution.get("vmstate") == "HALT"
            for notification in execution.get("notifications") or []:
                if (
                    halted
                    and isinstance(notification, dict)
                    and isinstance(notification.get("contract"), str)
                    and isinstance(notification.get("eventname"), str)
                ):
                    found.append(
                        Notification(
                            tx_hash=tx_hash,
                            index=position,
                            contract=notification["contract"],
                            event_name=notification["eventname"],
                            state=notification.get("state"),
                        )
                    )
                position += 1
    return Block(index, raw_time if isinstance(raw_time, int) else None, found)


def block_matches(block: Block, subs: list[Subscription]) -> list[Match]:
    """The notifications of ``block`` that some subscription wants (each once)."""
    found: list[Match] = []
    for n in block.notifications:
        for sub in subs:
            if _matches(sub, n):
                found.append(
                    Match(
                        sub,
                        {
                            "block_index": block.index,
                            "tx_hash": n.tx_hash,
                            "notification_index": n.index,
                            "contract": n.contract,
                            "event_name": n.event_name,
                            "state": n.state,
                        },
                    )
                )
                break
    return found


def store_block(
    session: Session,
    block: Block,
    subs: list[Subscription],
    dispatcher: Dispatcher | None,
) -> tuple[list[Match], int]:
    """Store ``block``'s matching notifications in ``session`` (the caller commits).

    Each interested subscriber's job is queued to be sent after that commit. Returns the
    matches and how many of them were new (a notification is stored once, whoever reads
    its block again).

    Writers of ``chain_events`` (the follower, a rescan) take one lock until they commit:
    subscribers keep their place as the highest event id they applied, so ids must become
    visible in order. Without it a rescan beside the follower could commit a lower id after
    a subscriber had moved past it, and that event would never be applied.
    """
    matches = block_matches(block, subs)
    if matches:
        session.execute(select(func.pg_advisory_xact_lock(_CHAIN_EVENTS_WRITE_LOCK)))
    inserted = 0
    for match in matches:
        new = session.scalar(
            insert(ChainEvent)
            .values(**match.event)
            .on_conflict_do_nothing(index_elements=["tx_hash", "notification_index"])
            .returning(ChainEvent.id)
        )
        if new is not None:
            inserted += 1
    if dispatcher is not None:
        for sub in {m.subscription for m in matches}:
            dispatcher.send_after_commit(session, sub.notify)
    return matches, inserted


def agree(sessions: sessionmaker[Session], subs: list[Subscription]) -> None:
    with sessions() as session:
        agree_on_followed(session, {sub.name: sub.target for sub in subs})
        session.commit()


@dataclass
class RescanResult:
    first: int
    last: int
    blocks: int = 0
    found: int = 0
    new: int = 0


def rescan(
    sessions: sessionmaker[Session],
    rpc: NeoRpc,
    subs: list[Subscription],
    dispatcher: Dispatcher | None,
    first: int,
    last: int | None = None,
) -> RescanResult:
    """Read blocks ``first``..``last`` (default: the newest) again, for every subscription.

    Idempotent: a notification stored before is skipped, and subscribers apply each event
    once (deposits are keyed by transaction and notification), so a range may be rescanned
    any number of times, overlapping the follower or not. It lets an operator backfill
    history from before the follower started. The follower's cursor is not moved.

    Raises:
        ValueError: ``first`` is negative, or after ``last``.
        Disagreement: as ``follow``.
        RpcUnavailable, MissingApplicationLog: as ``follow``; blocks before the failing one
            are stored (run again from that block).
    """
    agree(sessions, subs)
    newest = rpc.block_count() - 1
    last = newest if last is None else min(last, newest)
    if first < 0 or first > last:
        raise ValueError(f"nothing to rescan: blocks {first}..{last} (the newest is {newest})")
    result = RescanResult(first, last)
    for index in range(first, last + 1):
        with sessions() as session:
            matches, inserted = store_block(session, read_block(rpc, index), subs, dispatcher)
            session.commit()
        result.blocks += 1
        result.found += len(matches)
        result.new += inserted
    return result
