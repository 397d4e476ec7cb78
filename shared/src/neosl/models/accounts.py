from __future__ import annotations

from sqlalchemy import (
    CHAR,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from neosl.models.base import Base, Timestamp, UpdatedAt


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    # SHA-256 hex of the API key; the key itself is never stored.
    api_key_hash: Mapped[str | None] = mapped_column(CHAR(64), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Login tokens carry it; rotating the API key increments it, revoking every older token.
    token_generation: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        UniqueConstraint("username"),
        UniqueConstraint("email"),
        Index("idx_users_username", "username"),
        Index("idx_users_email", "email"),
        Index("idx_users_api_key", "api_key_hash"),
        Index("uq_users_username_lower", func.lower(username), unique=True),
        CheckConstraint("email = lower(email)", name="users_email_lower"),
        CheckConstraint("username ~ '^[A-Za-z0-9_.-]{3,50}$'", name="users_username_format"),
    )
