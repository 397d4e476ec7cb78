from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CHAR,
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
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from neosl.models.base import Base, Timestamp, UpdatedAt

TRANSACTION_TYPES = ("deposit", "withdraw", "function", "pricefeed", "refund")
TRANSACTION_STATUSES = ("pending", "confirmed", "failed")
CHARGE_TYPES = ("function", "pricefeed")


class GasAccount(Base):
    __tablename__ = "gas_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    balance: Mapped[Decimal] = mapped_column(Numeric(20, 8), server_default=text("0"))
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # When the tenant proved it owns the address; None for accounts from before proofs.
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    public_key: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    __table_args__ = (
        CheckConstraint("balance >= 0", name="gas_accounts_balance_check"),
        Index(
            "uq_gas_accounts_address",
            "address",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND verified_at IS NOT NULL"),
        ),
        Index(
            "uq_gas_accounts_user_address",
            "user_id",
            "address",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "uq_gas_accounts_default",
            "user_id",
            unique=True,
            postgresql_where=text("is_default AND deleted_at IS NULL"),
        ),
    )


class Transaction(Base):
    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("gas_accounts.id", ondelete="RESTRICT"), index=True
    )
    type: Mapped[str] = mapped_column(String(20), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[Timestamp] = mapped_column(index=True)
    reference: Mapped[str | None] = mapped_column(String(200))
    notification_index: Mapped[int | None] = mapped_column(Integer)
    block_index: Mapped[int | None] = mapped_column(BigInteger)
    raw_tx: Mapped[str | None] = mapped_column(Text)
    valid_until_block: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        CheckConstraint("amount > 0", name="transactions_amount_check"),
        CheckConstraint(
            "type IN ('deposit', 'withdraw', 'function', 'pricefeed', 'refund')",
            name="transactions_type_known",
        ),
        CheckConstraint(
            "status IN ('pending', 'confirmed', 'failed')", name="transactions_status_known"
        ),
        Index(
            "uq_transactions_charge_reference",
            "user_id",
            "type",
            "reference",
            unique=True,
            postgresql_where=text("type IN ('function', 'pricefeed', 'refund')"),
        ),
        Index(
            "uq_transactions_deposit",
            "tx_hash",
            "notification_index",
            unique=True,
            postgresql_where=text("type = 'deposit'"),
        ),
        Index(
            "idx_transactions_pending_withdrawals",
            "id",
            postgresql_where=text("type = 'withdraw' AND status = 'pending'"),
        ),
        Index(
            "idx_transactions_pending_charges",
            "id",
            postgresql_where=text("type IN ('function', 'pricefeed') AND status = 'pending'"),
        ),
    )


UNMATCHED_REASONS = ("unregistered", "unverified", "no_sender")


class UnmatchedDeposit(Base):
    __tablename__ = "unmatched_deposits"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    notification_index: Mapped[int] = mapped_column(Integer)
    block_index: Mapped[int] = mapped_column(BigInteger)
    from_address: Mapped[str | None] = mapped_column(String(42))
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    created_at: Mapped[Timestamp]
    reason: Mapped[str] = mapped_column(String(20), server_default=text("'unregistered'"))
    credited_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("transactions.id", ondelete="RESTRICT")
    )

    __table_args__ = (
        UniqueConstraint("tx_hash", "notification_index"),
        CheckConstraint(
            "reason IN ('unregistered', 'unverified', 'no_sender')",
            name="unmatched_deposits_reason_known",
        ),
    )


class GasAddressChallenge(Base):
    """A one-time message a tenant signs to prove it owns ``address``."""

    __tablename__ = "gas_address_challenges"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(42))
    message: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[Timestamp]

    __table_args__ = (
        Index(
            "idx_gas_address_challenges_open",
            "user_id",
            "address",
            "id",
            postgresql_where=text("used_at IS NULL"),
        ),
    )


class DeploymentFact(Base):
    """A value every process of the deployment must agree on, e.g. the deposit address."""

    __tablename__ = "deployment_facts"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[UpdatedAt]


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(CHAR(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[Timestamp] = mapped_column(index=True)
