"""Tenants' Neo N3 signers and the on-chain actions the relay sends for them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from neosl.models.base import Base, Timestamp, UpdatedAt

ACTION_STATUSES = ("queued", "pending", "confirmed", "failed")


class NeoSigner(Base):
    __tablename__ = "neo_signers"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(42), unique=True)
    script_hash: Mapped[str] = mapped_column(String(42), unique=True)
    public_key: Mapped[str] = mapped_column(String(66))
    sealed_key: Mapped[str] = mapped_column(Text)
    relay_key_id: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[Timestamp]


class NeoAction(Base):
    __tablename__ = "neo_actions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("executions.id", ondelete="SET NULL"), index=True
    )
    position: Mapped[int | None] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(42))
    method: Mapped[str] = mapped_column(String(100))
    args: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'"))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'queued'"))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    vm_state: Mapped[str | None] = mapped_column(String(10))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_index: Mapped[int | None] = mapped_column(BigInteger)
    system_fee: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    network_fee: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    gas_consumed: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    service_fee: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    fee_charged: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The price round this action publishes; None for a tenant's own calls.
    price_round_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("price_rounds.id", ondelete="SET NULL")
    )
    # The ledger type of its charge: "function" or "pricefeed".
    charge_type: Mapped[str] = mapped_column(String(20), server_default=text("'function'"))
    # Witnessed by the service's publisher (the hot wallet), not the tenant's signer.
    as_publisher: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'pending', 'confirmed', 'failed')",
            name="neo_actions_status_known",
        ),
        CheckConstraint(
            "charge_type IN ('function', 'pricefeed')", name="neo_actions_charge_type_known"
        ),
        Index(
            "uq_neo_actions_price_round",
            "price_round_id",
            unique=True,
            postgresql_where=text("price_round_id IS NOT NULL"),
        ),
        CheckConstraint("contract ~ '^0x[0-9a-f]{40}$'", name="neo_actions_contract_format"),
        Index("idx_neo_actions_user_id_id", "user_id", "id"),
        Index(
            "uq_neo_actions_execution_position",
            "execution_id",
            "position",
            unique=True,
            postgresql_where=text("execution_id IS NOT NULL"),
        ),
        Index(
            "idx_neo_actions_open", "id", postgresql_where=text("status IN ('queued', 'pending')")
        ),
    )
