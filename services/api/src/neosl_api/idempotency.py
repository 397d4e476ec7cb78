"""Idempotency-Key support for POSTs with side effects.

The first successful answer to (tenant, key) is stored with a hash of the request; the same
key with the same request replays it, with a different request answers 409. Failures are
not stored: retrying after one evaluates the request again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.errors import Conflict, ServiceError
from neosl.models import IdempotencyKey

_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class MissingIdempotencyKey(ServiceError):
    status = 400
    code = "idempotency_key_required"


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def request_hash(method: str, path: str, body: object) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None) -> str:
    """Raises: MissingIdempotencyKey: absent or not 1-200 visible ASCII characters."""
    if key is None or not _KEY.match(key):
        raise MissingIdempotencyKey(
            "this request needs an Idempotency-Key header (1-200 visible ASCII characters)",
            {"Idempotency-Key": ["Required: a unique value per intended operation."]},
        )
    return key


def _stored(session: Session, user_id: int, key: str, req_hash: str) -> Outcome | None:
    row = session.get(IdempotencyKey, (user_id, key))
    if row is None:
        return None
    if row.request_hash != req_hash:
        raise Conflict(
            "this Idempotency-Key was used for a different request",
            {"Idempotency-Key": ["Already used with another body or path."]},
        )
    return Outcome(row.status_code, dict(row.response), replayed=True)


def run(
    session: Session,
    user_id: int,
    key: str,
    req_hash: str,
    action: Callable[[], tuple[int, dict[str, Any]]],
) -> Outcome:
    """Replay the stored outcome of ``key``, or run ``action`` and store its outcome with it.

    ``action`` writes through ``session`` without committing; its rows and the stored
    outcome commit together, so a crash leaves either both or neither.

    Raises:
        Conflict: ``key`` was used with a different request.
        ServiceError: whatever ``action`` raises (nothing is stored then).
    """
    replay = _stored(session, user_id, key, req_hash)
    if replay is not None:
        return replay
    status_code, body = action()
    inserted = session.scalar(
        insert(IdempotencyKey)
        .values(
            user_id=user_id, key=key, request_hash=req_hash, status_code=status_code, response=body
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.key)
    )
    if inserted is None:
        # A concurrent request with the same key committed first: undo ours, answer with its.
        session.rollback()
        replay = _stored(session, user_id, key, req_hash)
        assert replay is not None
        return replay
    session.commit()
    return Outcome(status_code, body, replayed=False)
