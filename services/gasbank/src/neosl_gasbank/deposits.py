"""Credit deposits: GAS Transfer events the chain follower stored, to the deposit address.

The ledger keeps its own cursor over ``chain_events``; crediting a batch and moving the
cursor commit together, so every event is applied exactly once whatever crashes when.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.gas import ledger
from neosl.gas.money import from_units
from neosl.models import ChainCursor, ChainEvent
from neosl.neo.transfers import GAS_CONTRACT, decode_gas_transfer

CURSOR = "ledger-deposits"


def apply_deposits(session: Session, deposit_address: str, batch: int = 500) -> Counter[str]:
    """Apply up to ``batch`` new events; the counter says what became of them.

    ``counts["remaining"]`` is 1 when the batch was full (call again).
    """
    session.execute(insert(ChainCursor).values(name=CURSOR, position=0).on_conflict_do_nothing())
    cursor = session.get_one(ChainCursor, CURSOR, with_for_update=True)
    events = session.scalars(
        select(ChainEvent)
        .where(
            ChainEvent.id > cursor.position,
            ChainEvent.contract == GAS_CONTRACT,
            ChainEvent.event_name == "Transfer",
        )
        .order_by(ChainEvent.id)
        .limit(batch)
    ).all()
    counts: Counter[str] = Counter()
    for event in events:
        decoded = decode_gas_transfer(
            {"contract": event.contract, "eventname": event.event_name, "state": event.state}
        )
        if decoded is None or decoded[1] != deposit_address or decoded[2] <= 0:
            counts["ignored"] += 1
            continue
        from_address, _, units = decoded
        outcome = ledger.credit_deposit(
            session,
            tx_hash=event.tx_hash,
            notification_index=event.notification_index,
            block_index=event.block_index,
            from_address=from_address,
            amount=from_units(units),
        )
        counts[outcome.value] += 1
    if events:
        cursor.position = events[-1].id
    session.commit()
    counts["remaining"] = int(len(events) == batch)
    return counts
