"""Dependency checks behind /readyz."""

from __future__ import annotations

import logging

from redis import Redis, RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


def check_dependencies(session_factory: sessionmaker[Session], redis: Redis) -> dict[str, str]:
    """``{"database": "ok" | "unreachable", "broker": ...}``; never raises."""
    checks = {"database": "ok", "broker": "ok"}
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    try:
        redis.ping()
    except RedisError as exc:
        log.warning("readiness: broker unreachable: %s", exc)
        checks["broker"] = "unreachable"
    return checks
