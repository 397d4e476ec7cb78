from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from neosl.models.base import Base, Timestamp, UpdatedAt

if TYPE_CHECKING:
    from neosl.models.neo import NeoAction


# Why a feed is paused: its owner paused it (only the owner resumes it), or a round found
# the owner unable to pay (resumed by the pricefeed clock once the owner can pay a round).
PAUSED_BY_OWNER = "owner"
PAUSED_UNFUNDED = "insufficient_funds"
PAUSED_REASONS = (PAUSED_BY_OWNER, PAUSED_UNFUNDED)


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
    heartbeat: Mapped[int] = mapped_column(Integer, server_default=text("3600"))
    min_sources: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # None: the service's PriceFeed contract; else {"contract", "method"} of the tenant's.
    target: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    next_round_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Why a paused feed is paused (PAUSED_REASONS; None: by its owner too); None while it is
    # active. Only a feed paused for want of funds is resumed by the service (the clock).
    paused_reason: Mapped[str | None] = mapped_column(String(30))
    # Whether a USD pair may read a source's USDT market (the owner accepts USDT as USD).
    usdt_as_usd: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        CheckConstraint("frequency > 0", name="price_feeds_frequency_positive"),
        CheckConstraint("status IN ('active', 'paused')", name="price_feeds_status_known"),
        CheckConstraint(
            "paused_reason IN ('owner', 'insufficient_funds')",
            name="price_feeds_paused_reason_known",
        ),
        CheckConstraint(
            "paused_reason IS NULL OR status = 'paused'",
            name="price_feeds_paused_reason_when_paused",
        ),
        CheckConstraint(
            "aggregation IN ('median', 'mean', 'trimmed_mean', 'weighted')",
            name="price_feeds_aggregation_known",
        ),
        CheckConstraint("deviation > 0", name="price_feeds_deviation_positive"),
        CheckConstraint("heartbeat >= frequency", name="price_feeds_heartbeat_covers_frequency"),
        CheckConstraint("min_sources >= 1", name="price_feeds_min_sources_positive"),
        Index("idx_price_feeds_public_pair", "asset_pair", postgresql_where=text("public")),
        Index("idx_price_feeds_due", "next_round_at", postgresql_where=text("status = 'active'")),
        Index(
            "idx_price_feeds_unfunded",
            "user_id",
            postgresql_where=text("paused_reason = 'insufficient_funds'"),
        ),
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

    __table_args__ = (Index("idx_price_data_feed_id_timestamp", "feed_id", "timestamp"),)


PUBLICATIONS = ("not_due", "queued", "skipped", "unpaid")


class PriceRound(Base):
    """One round of a feed, priced or not, with what every source answered."""

    __tablename__ = "price_rounds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("price_feeds.id", ondelete="CASCADE"))
    scheduled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    sources_used: Mapped[int | None] = mapped_column(Integer)
    source_data: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    price_data_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("price_data.id", ondelete="SET NULL")
    )
    # What the round did about publishing (PUBLICATIONS; None without a price), and why.
    publication: Mapped[str | None] = mapped_column(String(20))
    publication_reason: Mapped[str | None] = mapped_column(Text)
    # Its signed report (neosl.pricefeeds.reports), when a report key signed it.
    report: Mapped[bytes | None] = mapped_column(LargeBinary)
    report_signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    report_key_id: Mapped[str | None] = mapped_column(String(50))
    report_public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The on-chain action publishing it (publication "queued"); read-only from here.
    action: Mapped[NeoAction | None] = relationship(viewonly=True, lazy="raise")

    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'priced', 'failed')",
            name="price_rounds_status_known",
        ),
        CheckConstraint(
            "publication IN ('not_due', 'queued', 'skipped', 'unpaid')",
            name="price_rounds_publication_known",
        ),
        CheckConstraint(
            "(report IS NULL) = (report_signature IS NULL) "
            "AND (report IS NULL) = (report_key_id IS NULL) "
            "AND (report IS NULL) = (report_public_key IS NULL)",
            name="price_rounds_report_whole",
        ),
        UniqueConstraint("feed_id", "scheduled_at"),
        Index("idx_price_rounds_feed_id_id", "feed_id", "id"),
    )


class SourceMarket(Base):
    """A market an exchange source lists (``neosl.pricefeeds.catalog``)."""

    __tablename__ = "source_markets"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    base: Mapped[str] = mapped_column(String(10), primary_key=True)
    quote: Mapped[str] = mapped_column(String(10), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("source_markets_pair", "base", "quote"),)


class SourceListing(Base):
    """When a source's market list was asked for and stored (None: never; the built-in
    catalog applies), and why the last attempt failed."""

    __tablename__ = "source_listings"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    listed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    markets: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
