"""Tenant isolation: rows are loaded scoped to their owner.

Another tenant's row answers exactly like a missing one, so ids reveal nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from neosl.errors import NotFound


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
    stmt = owned_by(model, user_id).where(ident == row_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        name = getattr(model, "__tablename__", model.__name__).rstrip("s").replace("_", " ")
        raise NotFound(f"{name} {row_id} not found")
    return row
