from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from neosl.models.base import Base, Timestamp, UpdatedAt


class Function(Base):
    __tablename__ = "functions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    source_code: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    status: Mapped[str] = mapped_column(String(20), index=True, server_default=text("'active'"))
    timeout: Mapped[int] = mapped_column(Integer, server_default=text("30"))
    memory: Mapped[int] = mapped_column(Integer, server_default=text("128"))
    execution_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_execution: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]
    # The secret names this function may read (its current version's grants).
    grants: Mapped[list[FunctionSecret]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="FunctionSecret.secret_name",
    )

    @property
    def secrets(self) -> list[str]:
        return [grant.secret_name for grant in self.grants]

    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        CheckConstraint(
            "timeout > 0 AND memory > 0 AND version > 0", name="functions_limits_positive"
        ),
        CheckConstraint("status IN ('active', 'paused')", name="functions_status_known"),
        CheckConstraint(
            "timeout BETWEEN 1 AND 300 AND memory BETWEEN 16 AND 512",
            name="functions_limits_range",
        ),
    )


class FunctionVersion(Base):
    """One immutable version of a function's code, limits and grants."""

    __tablename__ = "function_versions"

    function_id: Mapped[int] = mapped_column(
        ForeignKey("functions.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_code: Mapped[str] = mapped_column(Text)
    timeout: Mapped[int] = mapped_column(Integer)
    memory: Mapped[int] = mapped_column(Integer)
    secrets: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    created_at: Mapped[Timestamp]


class Secret(Base):
    __tablename__ = "secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # base64(nonce || AES-256-GCM ciphertext) under this version's data key.
    value: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]
    # The data key, wrapped by the master key named master_key_id (NSL_SECRETS_KEY).
    wrapped_key: Mapped[str] = mapped_column(Text)
    master_key_id: Mapped[str] = mapped_column(String(50), index=True)

    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        CheckConstraint("name ~ '^[A-Za-z0-9_]{1,100}$'", name="secrets_name_format"),
    )


class FunctionSecret(Base):
    __tablename__ = "function_secrets"

    function_id: Mapped[int] = mapped_column(
        ForeignKey("functions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    secret_name: Mapped[str] = mapped_column(String(100), primary_key=True)


EXECUTION_STATUSES = ("queued", "running", "succeeded", "failed", "timeout")
TERMINAL_STATUSES = ("succeeded", "failed", "timeout")


class Execution(Base):
    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    function_id: Mapped[int] = mapped_column(
        ForeignKey("functions.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), index=True)
    # When it started running (None while queued).
    start_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    end_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    duration: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[Timestamp] = mapped_column(index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[int] = mapped_column(Integer)
    input: Mapped[Any | None] = mapped_column(JSONB)
    trigger: Mapped[Any | None] = mapped_column(JSONB)
    worker: Mapped[str | None] = mapped_column(String(200))
    charge_status: Mapped[str | None] = mapped_column(String(20))
    charge_amount: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    # The pending charge holding the most it can cost (None: free when it was queued).
    hold_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    # When its job was sent to the executor (None: it waits for a slot of its tenant).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'timeout')",
            name="executions_status_known",
        ),
        Index("idx_executions_user_id_id", "user_id", "id"),
        Index("idx_executions_queued", "created_at", postgresql_where=text("status = 'queued'")),
        Index("idx_executions_running", "start_time", postgresql_where=text("status = 'running'")),
        Index(
            "idx_executions_waiting",
            "user_id",
            "id",
            postgresql_where=text("status = 'queued' AND dispatched_at IS NULL"),
        ),
        Index(
            "idx_executions_in_flight",
            "user_id",
            postgresql_where=text(
                "status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL)"
            ),
        ),
    )


class ExecutionLog(Base):
    __tablename__ = "execution_logs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    timestamp: Mapped[Timestamp] = mapped_column(index=True)
    level: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
