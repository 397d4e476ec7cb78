"""Tenant isolation: rows are loaded scoped to their owner; per-tenant locks.

Another tenant's row answers exactly like a missing one, so ids reveal nothing.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Protocol

from sqlalchemy import BigInteger, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from neosl import db
from neosl.errors import NotFound
from neosl.functions import executions
from neosl.onchain import actions
from neosl.pricefeeds import definitions


class Owned(Protocol):
    id: Any
    user_id: Any


def owned_by[M: Owned](model: type[M], user_id: int) -> Select[M]:
    """A SELECT of ``model`` rows that belong to ``user_id``; add filters and order to it."""
    owner: InstrumentedAttribute[int] = model.user_id
    return select(model).where(owner == user_id)


def get_owned[M: Owned](
    session: Session, model: type[M], row_id: int, user_id: int, *, for_update: bool = False
) -> M:
    """The ``model`` row ``row_id`` if it belongs to ``user_id``.

    Raises:
        NotFound: no such row, or it belongs to another tenant (indistinguishable on purpose).
    """
    ident: InstrumentedAttribute[int] = model.id
    if not 0 < row_id <= id_limit(ident):
        # No such row can exist, and PostgreSQL would reject the number outright.
        raise NotFound(f"{_name(model)} {row_id} not found")
    stmt = owned_by(model, user_id).where(ident == row_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound(f"{_name(model)} {row_id} not found")
    return row


def id_limit(column: InstrumentedAttribute[int]) -> int:
    """The largest id the column's type holds (INTEGER or BIGINT)."""
    return 2**63 - 1 if isinstance(column.type, BigInteger) else 2**31 - 1


def _name(model: type[Any]) -> str:
    return str(getattr(model, "__tablename__", model.__name__)).rstrip("s").replace("_", " ")


class TenantLock(IntEnum):
    """What of a tenant's is decided one transaction at a time: every lock class of
    ``neosl.db.lock_tenant``, the API's own and those of shared code (the executor, the CLI
    and the workers count under those too). Distinct classes, so unrelated use cases never
    wait for each other."""

    # Its gas accounts: registering, the default, removal, withdrawals against the daily limit.
    GAS_BANK = 0x6A5B
    # Its number of triggers, against NSL_TRIGGERS_PER_TENANT.
    TRIGGERS = 0x7467
    # Its number of price feeds, against NSL_FEEDS_PER_TENANT.
    PRICE_FEEDS = definitions.FEEDS_LOCK
    # Its on-chain actions queued or pending, against NSL_ACTIONS_IN_FLIGHT_PER_TENANT.
    ACTIONS_IN_FLIGHT = actions.IN_FLIGHT_LOCK
    # Its executions dispatched to the executor, against NSL_EXECUTIONS_PER_TENANT.
    EXECUTIONS_DISPATCHED = executions.DISPATCH_LOCK


def lock_tenant(session: Session, user_id: int, what: TenantLock) -> None:
    """Wait for the tenant's lock of ``what`` and hold it until the transaction ends
    (``neosl.db.lock_tenant``)."""
    db.lock_tenant(session, int(what), user_id)
