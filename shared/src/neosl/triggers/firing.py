"""Firing triggers: one path for every type (cron, webhook, price, blockchain, by hand).

A firing records a ``trigger_events`` row and, when the trigger may fire, creates the queued
execution it names (the event as ``ctx.trigger``, the cause's input as ``main``'s input), in
one statement. The executor's job is queued on the caller's session and sent after its
commit.

Every firing names its cause with a key (``cron:<slot>``, ``hook:<signature>``,
``chain:<tx>:<notification>``, ``price:<since>``, ``manual:<key>``); ``(trigger_id,
cause_key)`` is unique, so the same cause never yields a second event or execution, whatever
retries, restarts or concurrent replicas happen: the second attempt finds the first one's
row and does nothing.

What an event records:

- ``fired``: the execution was created (``execution_id``);
- ``skipped``: the trigger or its function is paused, or the caller skipped the cause (a
  cron slot missed while no scheduler ran); ``reason`` says which;
- ``failed``: the tenant's default gas account cannot pay for the cheapest execution.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from neosl import jobs
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas.money import format_amount
from neosl.gas.prices import cheapest_execution

MAX_CAUSE_KEY = 200


@dataclass(frozen=True)
class Cause:
    """Why a trigger fires.

    ``key`` names the cause for idempotency (at most 200 characters); ``detail`` describes
    it (stored on the event and given to the function as ``ctx.trigger.cause``); ``input`` is
    the function's input (by default the event: ``detail`` with the trigger's id and type).
    ``skip`` records the cause as skipped with that reason instead of firing.
    """

    trigger_id: int
    key: str
    detail: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    use_detail_as_input: bool = True
    skip: str | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.key) <= MAX_CAUSE_KEY:
            raise ValueError(f"a cause key has 1-{MAX_CAUSE_KEY} characters: {self.key[:50]!r}")


@dataclass(frozen=True)
class Fired:
    """The outcome of one cause.

    ``new`` is False when the cause had been recorded before (by another attempt): then
    ``status`` and ``execution_id`` are those of that first record when this transaction
    can see it, else None. ``event_id`` is None only for a trigger that no longer exists.
    """

    trigger_id: int
    key: str
    new: bool
    event_id: int | None
    status: str | None
    execution_id: int | None
    reason: str | None


@functools.cache
def _statement() -> TextClause:
    # One statement for a whole batch: 10,000 cron triggers due in the same minute must be
    # fired in well under a second, which row-by-row round trips cannot do.
    # Ids are drawn first, so the event can name its execution and the execution's
    # ctx.trigger its event in the same statement (foreign keys are checked at its end).
    return text(
        """
WITH c AS (
    SELECT * FROM jsonb_to_recordset(CAST(:causes AS jsonb)) AS x(
        ord int, trigger_id int, cause_key text, cause jsonb, input jsonb, skip text)
),
t0 AS MATERIALIZED (
    SELECT c.*, tr.user_id, tr.function_id, tr.name, tr.trigger_type,
           tr.status AS trigger_status, f.status AS function_status, f.version, f.timeout,
           (CAST(:cheapest AS numeric) <= 0 OR COALESCE(ga.balance, 0) >= :cheapest) AS can_pay
    FROM c
    JOIN triggers tr ON tr.id = c.trigger_id
    JOIN functions f ON f.id = tr.function_id
    LEFT JOIN gas_accounts ga
        ON ga.user_id = tr.user_id AND ga.is_default AND ga.deleted_at IS NULL
    ORDER BY c.ord
),
-- Ids drawn in the causes' order (a materialised CTE is read back in the order it was
-- written), so a trigger's history lists its events in the order they were caused.
t AS (
    SELECT t0.*, nextval('trigger_events_id_seq') AS event_id FROM t0
),
d AS (
    SELECT t.*,
        CASE WHEN skip IS NOT NULL OR trigger_status <> 'active' OR function_status <> 'active'
                THEN 'skipped'
             WHEN NOT can_pay THEN 'failed'
             ELSE 'fired' END AS status,
        CASE WHEN skip IS NOT NULL THEN skip
             WHEN trigger_status <> 'active' THEN 'the trigger is paused'
             WHEN function_status <> 'active' THEN 'the function is paused'
             WHEN NOT can_pay THEN :unpaid
        END AS reason,
        CASE WHEN skip IS NULL AND trigger_status = 'active' AND function_status = 'active'
                  AND can_pay
             THEN nextval('executions_id_seq') END AS execution_id
    FROM t
),
ev AS (
    INSERT INTO trigger_events
        (id, trigger_id, timestamp, status, execution_id, cause_key, cause, reason)
    SELECT event_id, trigger_id, clock_timestamp(), status, execution_id, cause_key, cause,
           reason
    FROM d
    ORDER BY ord
    ON CONFLICT (trigger_id, cause_key) DO NOTHING
    RETURNING id
),
ex AS (
    INSERT INTO executions (id, function_id, user_id, version, timeout, status, input, trigger)
    SELECT d.execution_id, d.function_id, d.user_id, d.version, d.timeout, 'queued', d.input,
           jsonb_build_object('trigger_id', d.trigger_id, 'event_id', d.event_id,
                              'type', d.trigger_type, 'name', d.name, 'cause', d.cause)
    FROM d JOIN ev ON ev.id = d.event_id
    WHERE d.execution_id IS NOT NULL
    RETURNING id
)
SELECT c.ord, c.trigger_id, c.cause_key, (ev.id IS NOT NULL) AS new,
       COALESCE(ev.id, old.id) AS event_id,
       CASE WHEN ev.id IS NOT NULL THEN d.status ELSE old.status END AS status,
       CASE WHEN ev.id IS NOT NULL THEN d.execution_id ELSE old.execution_id END
           AS execution_id,
       CASE WHEN ev.id IS NOT NULL THEN d.reason ELSE old.reason END AS reason
FROM c
LEFT JOIN d ON d.ord = c.ord
LEFT JOIN ev ON ev.id = d.event_id
LEFT JOIN trigger_events old
    ON ev.id IS NULL AND old.trigger_id = c.trigger_id AND old.cause_key = c.cause_key
ORDER BY c.ord
"""
    )


def fire(
    session: Session, settings: Settings, dispatcher: Dispatcher, causes: Sequence[Cause]
) -> list[Fired]:
    """Record each cause and create the executions of those that fire (the caller commits).

    The executions' jobs are sent once the caller's transaction commits. Causes already
    recorded (same trigger and key) change nothing. Outcomes are in the order of ``causes``.
    """
    if not causes:
        return []
    cheapest = cheapest_execution(settings)
    rows = [
        {
            "ord": i,
            "trigger_id": c.trigger_id,
            "cause_key": c.key,
            "cause": c.detail,
            "input": c.detail if c.use_detail_as_input else c.input,
            "skip": c.skip,
        }
        for i, c in enumerate(causes)
    ]
    result = session.execute(
        _statement(),
        {
            "causes": json.dumps(rows, separators=(",", ":"), default=_json_default),
            "cheapest": cheapest,
            "unpaid": (
                "your default gas account cannot pay for an execution "
                f"(at least {format_amount(cheapest)} GAS)"
            ),
        },
    ).all()
    outcomes = [
        Fired(
            trigger_id=row.trigger_id,
            key=row.cause_key,
            new=bool(row.new),
            event_id=row.event_id,
            status=row.status,
            execution_id=row.execution_id,
            reason=row.reason,
        )
        for row in result
    ]
    started = [o.execution_id for o in outcomes if o.new and o.execution_id is not None]
    if started:
        dispatcher.send_many_after_commit(
            session, jobs.RUN_EXECUTION, [{"execution_id": i} for i in started]
        )
    return outcomes


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
