from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from neosl.models.base import Base, Timestamp, UpdatedAt


class PriceFeed(Base):
    __tablename__ = "price_feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    asset_pair: Mapped[str] = mapped_column(String(20), index=True)
    frequency: Mapped[int] = mapped_column(Integer)
    sources: Mapped[Any] = mapped_column(JSONB)
    aggregation: Mapped[str] = mapped_column(String(20), server_default=text("'median'"))
    deviation: Mapped[Decimal] = mapped_column(Numeric(10, 2), server_default=text("0.5"))
    status: Mapped[str] = mapped_column(String(20), index=True, server_default=text("'active'"))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]
    # An operator's feed every tenant may read and trigger on.
    public: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        CheckConstraint("frequency > 0", name="price_feeds_frequency_positive"),
        Index("idx_price_feeds_public_pair", "asset_pair", postgresql_where=text("public")),
    )


class PriceData(Base):
    __tablename__ = "price_data"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("price_feeds.id", ondelete="CASCADE"), index=True
    )
    timestamp: Mapped[Timestamp] = mapped_column(index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    sources_used: Mapped[int] = mapped_column(Integer)
    source_data: Mapped[Any | None] = mapped_column(JSONB)
