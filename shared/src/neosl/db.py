"""Engine and session factories. Nothing is created at import time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings

log = logging.getLogger(__name__)

# The database did not answer (restart, failover, network): worth asking again.
UNAVAILABLE = (OperationalError, InterfaceError)


def make_engine(
    settings: Settings, *, pool_size: int | None = None, pre_ping: bool = True
) -> Engine:
    """The process's engine. With ``pre_ping`` a dropped connection (database restart, idle
    timeout) is replaced at checkout, for a round trip per checkout; without it, the first
    statement on a dropped connection fails (the pool then replaces every connection older
    than the failure): for callers that repeat their unit of work (``ride_out``)."""
    return create_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=pre_ping,
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


# Built once: building a statement per call cost more than running it.
_LOCK_TENANT = text("SELECT pg_advisory_xact_lock(:lock_class, :user_id)")


def lock_tenant(session: Session, lock_class: int, user_id: int) -> None:
    """Wait for the tenant's lock of ``lock_class`` and hold it until the transaction ends.

    A check-then-write (count, then insert) under it cannot interleave with another one of
    the same tenant: the second counts what the first committed. A transaction-scoped
    advisory lock (class, tenant id) locks no row, so nothing else the tenant does waits.
    Each class is a constant of the code that counts under it (distinct: see the API's
    ``TenantLock``, which lists them all).
    """
    session.connection().execute(_LOCK_TENANT, {"lock_class": lock_class, "user_id": user_id})


def ride_out[T](work: Callable[[], T], *, seconds: float, what: str) -> T:
    """``work()``, called again while the database is unavailable, for up to ``seconds``.

    For a unit of work that is safe to repeat: each call opens its own session and commits
    or rolls back, so a call cut off by an outage (even in its commit) leaves either nothing
    or a state the next call recognises. Backs off from 0.1 s to 2 s between calls.

    Raises:
        OperationalError, InterfaceError: the database stayed unavailable past ``seconds``.
    """
    deadline = time.monotonic() + seconds
    delay = 0.1
    while True:
        try:
            return work()
        except UNAVAILABLE as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: the database is unavailable, again in %.1f s: %s", what, delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
