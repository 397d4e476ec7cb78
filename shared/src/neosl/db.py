"""Engine and session factories. Nothing is created at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings


def make_engine(settings: Settings, *, pool_size: int | None = None) -> Engine:
    return create_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # A dropped connection (database restart, idle timeout) is replaced, not raised.
        pool_pre_ping=True,
        future=True,
    )


@contextmanager
def short_lived_engine(settings: Settings) -> Iterator[Engine]:
    """A one-connection engine for a command that runs and exits (migrations, checks)."""
    engine = make_engine(settings, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: services return ORM rows that callers read after the commit.
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that is rolled back if the block raises and always closed.

    Service functions own their commits; this only guarantees nothing is left half-done.
    """
    session = factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
