from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from neosl.models.base import Base, Timestamp, UpdatedAt

TRIGGER_TYPES = ("cron", "price", "blockchain", "webhook")
TRIGGER_STATUSES = ("active", "paused")
EVENT_STATUSES = ("fired", "skipped", "failed")


class Trigger(Base):
    __tablename__ = "triggers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    function_id: Mapped[int] = mapped_column(
        ForeignKey("functions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    trigger_type: Mapped[str] = mapped_column(String(50), index=True)
    trigger_config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), index=True, server_default=text("'active'"))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]
    # Cron: the next slot to fire.
    next_fire_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Price: the feed the pair resolved to, and the evaluation's state.
    feed_id: Mapped[int | None] = mapped_column(
        ForeignKey("price_feeds.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # Webhook: the signing secret, sealed (neosl.functions.secretbox).
    hook_secret: Mapped[str | None] = mapped_column(Text)
    hook_wrapped_key: Mapped[str | None] = mapped_column(Text)
    hook_master_key_id: Mapped[str | None] = mapped_column(String(50))
    hook_version: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        CheckConstraint(
            "trigger_type IN ('cron', 'price', 'blockchain', 'webhook')",
            name="triggers_type_known",
        ),
        CheckConstraint("status IN ('active', 'paused')", name="triggers_status_known"),
        Index(
            "idx_triggers_cron_due",
            "next_fire_at",
            postgresql_where=text("trigger_type = 'cron' AND status = 'active'"),
        ),
        Index(
            "idx_triggers_chain_active",
            "id",
            postgresql_where=text("trigger_type = 'blockchain' AND status = 'active'"),
        ),
    )


class TriggerEvent(Base):
    __tablename__ = "trigger_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trigger_id: Mapped[int] = mapped_column(ForeignKey("triggers.id", ondelete="CASCADE"))
    timestamp: Mapped[Timestamp] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(20))
    execution_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="SET NULL")
    )
    # What fired it: cron:<slot>, hook:<signature>, chain:<tx>:<n>, price:<since>, manual:<key>.
    cause_key: Mapped[str] = mapped_column(String(200))
    cause: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("trigger_id", "cause_key"),
        CheckConstraint(
            "status IN ('fired', 'skipped', 'failed')", name="trigger_events_status_known"
        ),
        Index("idx_trigger_events_trigger_id_id", "trigger_id", "id"),
    )
