from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from neosl.models.base import Base, Timestamp, UpdatedAt

TRANSACTION_TYPES = ("deposit", "withdraw", "function", "pricefeed")


class GasAccount(Base):
    __tablename__ = "gas_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    balance: Mapped[Decimal] = mapped_column(Numeric(20, 8), server_default=text("0"))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        UniqueConstraint("user_id", "address"),
        CheckConstraint("balance >= 0", name="gas_accounts_balance_check"),
    )


class Transaction(Base):
    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("gas_accounts.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(20), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[Timestamp] = mapped_column(index=True)

    __table_args__ = (
        CheckConstraint("amount > 0", name="transactions_amount_check"),
        CheckConstraint(
            "type IN ('deposit', 'withdraw', 'function', 'pricefeed')",
            name="transactions_type_known",
        ),
    )
