"""Idempotency-Key support for POSTs with side effects (an entrypoint concern).

The key is claimed before the action runs, in the action's own database transaction: an
``INSERT`` of (tenant, key) that a concurrent request with the same key waits on. The action's
rows and its answer commit together with the claim; if the action fails, the rollback
releases the claim. So:

- the same key and request, retried after an answer: the stored answer is replayed;
- retried while the first is still running: the retry waits, then replays the first
  answer (it never runs the action a second time, nor answers something else);
- the same key with another request: 409;
- retried after a failure (4xx): evaluated again, since failures are not stored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, request
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.errors import Conflict, ServiceError
from neosl.models import IdempotencyKey
from neosl_api import bodies, context

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")

# For @blp.doc(**OPENAPI): the header in the OpenAPI document.
OPENAPI = {
    "parameters": [
        {
            "in": "header",
            "name": HEADER,
            "required": True,
            "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
            "description": "Same key and body: the first answer is replayed (also to a retry "
            "sent while the first request runs). Same key, different body: 409.",
        }
    ]
}


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
            f"this request needs an {HEADER} header (1-200 visible ASCII characters)",
            {HEADER: ["Required: a unique value per intended operation."]},
        )
    return key


def run(
    session: Session,
    user_id: int,
    key: str,
    req_hash: str,
    action: Callable[[], tuple[int, dict[str, Any]]],
) -> Outcome:
    """Replay the answer stored for ``key``, or claim it, run ``action`` and store its answer.

    ``action`` writes through ``session`` without committing; this commits its rows, the
    claim and the answer together, or rolls all back if it raises.

    Raises:
        Conflict: ``key`` was used with a different request.
        ServiceError: whatever ``action`` raises (nothing is stored then).
    """
    claimed = session.scalar(
        insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=req_hash, status_code=0, response={})
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.key)
    )
    if claimed is None:
        # Stored by an earlier request, or by a concurrent one we just waited for.
        session.rollback()
        row = session.execute(
            select(
                IdempotencyKey.request_hash, IdempotencyKey.status_code, IdempotencyKey.response
            ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        ).one()
        if row.request_hash != req_hash:
            raise Conflict(
                f"this {HEADER} was used for a different request",
                {HEADER: ["Already used with another body or path."]},
            )
        return Outcome(row.status_code, dict(row.response), replayed=True)
    try:
        status_code, body = action()
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .values(status_code=status_code, response=body)
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return Outcome(status_code, body, replayed=False)


def respond(status_code: int, action: Callable[[], dict[str, Any]]) -> Response:
    """Run a route's ``action`` under the request's Idempotency-Key; the JSON response.

    ``action`` returns the serialized body (it runs once per key; replays return its
    stored body with ``Idempotent-Replayed: true``).

    Raises:
        MissingIdempotencyKey, Conflict, ServiceError: as ``check_key`` and ``run``.
    """
    key = check_key(request.headers.get(HEADER))
    parsed = bodies.parsed()
    req_hash = request_hash(request.method, request.path, parsed[0] if parsed else None)
    outcome = run(
        context.db(),
        context.current_user().id,
        key,
        req_hash,
        lambda: (status_code, action()),
    )
    response = context.json_response(outcome.body, outcome.status_code)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
