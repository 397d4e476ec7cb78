from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from neosl.models.base import Base, Timestamp, UpdatedAt


class ChainCursor(Base):
    """A durable position: the follower's next block, or a subscriber's last event id."""

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    chain_height: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[UpdatedAt]


class ChainEvent(Base):
    __tablename__ = "chain_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    block_index: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    notification_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(42))
    event_name: Mapped[str] = mapped_column(String(100))
    state: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[Timestamp]

    __table_args__ = (
        UniqueConstraint("tx_hash", "notification_index"),
        Index("idx_chain_events_contract_event", "contract", "event_name", "id"),
    )
