"""The one pagination convention of every list endpoint.

``?limit=N`` (1-100, default 20) and ``?cursor=C``. Lists are ordered newest first by id;
a page holds at most ``limit`` items and ``next_cursor`` is the opaque value to pass for the
next page, or null on the last one. Keyset pagination: pages stay stable while rows are
added, and a deep page costs the same as the first.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from neosl.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ID = 2**63 - 1  # BIGINT; a larger id cannot come from a page


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor points after.

    Raises:
        InvalidInput: the cursor was not made by ``encode_cursor``.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "id" or not value.isdigit() or not 0 < int(value) <= MAX_ID:
            raise ValueError(raw)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "invalid cursor", {"cursor": ["Not a cursor from a previous page."]}
        ) from None


def paginate[T](
    session: Session,
    stmt: Select[T],
    id_column: InstrumentedAttribute[Any],
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[T]:
    """Run ``stmt`` one page at a time, newest (highest id) first.

    Raises:
        InvalidInput: ``limit`` out of range or a malformed ``cursor``.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("invalid limit", {"limit": [f"Must be between 1 and {MAX_LIMIT}."]})
    if cursor:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    # One extra row tells whether another page exists without a COUNT.
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = encode_cursor(getattr(items[-1], id_column.key)) if more else None
    return Page(items, next_cursor)
