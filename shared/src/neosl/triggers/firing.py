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
- ``skipped``: the trigger or its function is paused, the caller skipped the cause (a cron
  slot missed while no scheduler ran), or the tenant's default gas account cannot cover the
  execution's hold (reason ``insufficient_funds: …``); ``reason`` says which.

An execution that fires is paid before it runs, in the same statement: when executions cost
something, the most it can cost (a run until its function's timeout, ``gas.prices``) is held
on the tenant's default account as a pending ``function`` charge (reference
``execution:<id>``), which the executor settles to what really ran.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, TextClause, case, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions import executions
from neosl.gas.prices import hold_parameters

MAX_CAUSE_KEY = 200
# How the reason of a firing skipped for lack of funds begins (the statement below writes it).
UNPAID = "insufficient_funds:"


def unpaid(reason: str | None) -> bool:
    """Whether a skipped event's ``reason`` says the tenant could not cover the hold."""
    return reason is not None and reason.startswith(UNPAID)


def reason_kind(
    reason: ColumnElement[str | None] | InstrumentedAttribute[str | None],
) -> ColumnElement[str]:
    """Why an event did not fire, as a short word (for metrics), from what the reasons
    written here and by the clock begin with."""
    return case(
        (reason.is_(None), "none"),
        (reason.startswith(UNPAID), "insufficient_funds"),
        (reason == "the trigger is paused", "trigger_paused"),
        (reason == "the function is paused", "function_paused"),
        (reason.startswith("missed:"), "missed"),
        else_="other",
    )


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
-- The tenants' default accounts, locked in id order (so concurrent batches never deadlock):
-- the balance test and the holds below are one step.
acct AS MATERIALIZED (
    SELECT ga.id, ga.user_id, ga.balance FROM gas_accounts ga
    WHERE ga.is_default AND ga.deleted_at IS NULL
      AND ga.user_id IN (SELECT tr.user_id FROM c JOIN triggers tr ON tr.id = c.trigger_id)
    ORDER BY ga.id
    FOR UPDATE
),
t0 AS MATERIALIZED (
    SELECT c.*, tr.user_id, tr.function_id, tr.name, tr.trigger_type,
           tr.status AS trigger_status, f.status AS function_status, f.version, f.timeout,
           acct.id AS account_id, acct.balance,
           -- The most the execution can cost: a run until its timeout.
           CAST(:base_fee AS numeric) + CAST(:fee_per_100ms AS numeric) * f.timeout * 10
               AS hold,
           (c.skip IS NULL AND tr.status = 'active' AND f.status = 'active') AS eligible
    FROM c
    JOIN triggers tr ON tr.id = c.trigger_id
    JOIN functions f ON f.id = tr.function_id
    LEFT JOIN acct ON acct.user_id = tr.user_id
    ORDER BY c.ord
),
-- A tenant's firings in this batch are paid in the causes' order: one fires while the
-- holds of its tenant's firings so far fit in the balance.
t1 AS MATERIALIZED (
    SELECT t0.*,
        (hold <= 0 OR (account_id IS NOT NULL AND balance >= sum(
            CASE WHEN eligible THEN hold ELSE 0 END) OVER (PARTITION BY user_id ORDER BY ord)
        )) AS can_pay
    FROM t0
    ORDER BY ord
),
-- Ids drawn in the causes' order (a materialised CTE is read back in the order it was
-- written), so a trigger's history lists its events in the order they were caused.
t AS (
    SELECT t1.*, nextval('trigger_events_id_seq') AS event_id FROM t1
),
d AS (
    SELECT t.*,
        CASE WHEN NOT eligible OR NOT can_pay THEN 'skipped' ELSE 'fired' END AS status,
        CASE WHEN skip IS NOT NULL THEN skip
             WHEN trigger_status <> 'active' THEN 'the trigger is paused'
             WHEN function_status <> 'active' THEN 'the function is paused'
             WHEN NOT can_pay THEN
                 'insufficient_funds: the default gas account cannot cover the hold of '
                 || trim_scale(hold) || ' GAS (a run until the function''s timeout)'
        END AS reason,
        CASE WHEN eligible AND can_pay THEN nextval('executions_id_seq') END AS execution_id,
        CASE WHEN eligible AND can_pay AND hold > 0
             THEN nextval('transactions_id_seq') END AS hold_id
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
    INSERT INTO executions (id, function_id, user_id, version, timeout, status, input, trigger,
                            hold_transaction_id)
    SELECT d.execution_id, d.function_id, d.user_id, d.version, d.timeout, 'queued', d.input,
           jsonb_build_object('trigger_id', d.trigger_id, 'event_id', d.event_id,
                              'type', d.trigger_type, 'name', d.name, 'cause', d.cause),
           d.hold_id
    FROM d JOIN ev ON ev.id = d.event_id
    WHERE d.execution_id IS NOT NULL
    RETURNING id
),
-- Each execution created holds its most expensive run on its tenant's default account.
hx AS (
    INSERT INTO transactions (id, user_id, account_id, type, amount, status, reference)
    SELECT d.hold_id, d.user_id, d.account_id, 'function', d.hold, 'pending',
           'execution:' || d.execution_id
    FROM d JOIN ev ON ev.id = d.event_id
    WHERE d.hold_id IS NOT NULL
    RETURNING account_id, amount
),
debit AS (
    UPDATE gas_accounts ga SET balance = ga.balance - held.total
    FROM (SELECT account_id, sum(amount) AS total FROM hx GROUP BY account_id) AS held
    WHERE ga.id = held.account_id
    RETURNING ga.id
)
SELECT c.ord, c.trigger_id, c.cause_key, (ev.id IS NOT NULL) AS new, d.user_id,
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

        The executions are dispatched within their tenants' shares (``functions.executions``):
    their jobs are sent once the caller's transaction commits. Causes already
        recorded (same trigger and key) change nothing. Outcomes are in the order of ``causes``.
    """
    if not causes:
        return []
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
            **hold_parameters(settings),
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
    # The executions created are dispatched within each tenant's share; the rest when its
    # executions end.
    tenants = {row.user_id for row in result if row.new and row.execution_id is not None}
    if tenants:
        executions.release(session, dispatcher, tenants, settings.executions_per_tenant)
    return outcomes


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
