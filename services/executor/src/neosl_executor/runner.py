"""Running one execution: claim it, run it in the sandbox, record how it ended and charge it.

At most once: an execution is claimed (``queued`` → ``running``) in its own committed
transaction before any code runs, so a redelivered or re-sent message finds nothing to do.
Exactly one terminal status and one charge: the terminal status, the logs, the function's
counters and the charge commit together, and only if the row is still ``running`` (the
reaper may have finished an execution whose worker it took for dead).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    DateTime,
    Numeric,
    Select,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from neosl import logs
from neosl.config import Settings
from neosl.db import ride_out
from neosl.dispatch import Dispatcher
from neosl.errors import InvalidInput
from neosl.functions import executions
from neosl.functions.sandbox import cut_error
from neosl.functions.sandbox.types import Limits, LogLine, Outcome, RunRequest
from neosl.functions.secretbox import granted_secrets
from neosl.gas import ledger
from neosl.gas.prices import execution_price
from neosl.models import Execution, ExecutionLog, Function, FunctionVersion, Transaction
from neosl.onchain import actions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    execution_id: int
    function_id: int
    user_id: int
    version: int
    input: Any
    trigger: Any
    start_time: dt.datetime
    # None when the version no longer exists.
    code: Code | None


@dataclass(frozen=True)
class Code:
    """What one version runs: its source, limits and grants."""

    source_code: str
    timeout: int
    memory: int
    secrets: list[str]


# The statements on every execution's path are built once (building one costs more than
# running it), take their values as parameters and run on the session's connection,
# without the ORM: they name no row a session has loaded. So does the rarer charge
# update, which runs through the session with nothing to synchronise.
_DML = {"synchronize_session": False}


@functools.cache
def _claim_statement() -> Select[Any]:
    claimed = (
        update(Execution)
        .where(
            Execution.id == bindparam("execution_id"),
            # Queued, or already claimed by this very call (its token) in a commit whose
            # answer an outage cut off.
            or_(
                Execution.status == "queued",
                and_(Execution.status == "running", Execution.worker == bindparam("claimed_by")),
            ),
        )
        .values(
            status="running",
            start_time=func.coalesce(Execution.start_time, func.now()),
            worker=bindparam("claimed_by"),
        )
        .returning(
            Execution.function_id,
            Execution.user_id,
            Execution.version,
            Execution.input,
            Execution.trigger,
            Execution.start_time,
        )
        .cte("claimed")
    )
    return select(
        claimed,
        FunctionVersion.source_code,
        FunctionVersion.timeout,
        FunctionVersion.memory,
        FunctionVersion.secrets,
    ).outerjoin(
        FunctionVersion,
        and_(
            FunctionVersion.function_id == claimed.c.function_id,
            FunctionVersion.version == claimed.c.version,
        ),
    )


@functools.cache
def _finish_statement() -> Update:
    end_time = bindparam("ended_at", type_=DateTime(timezone=True))
    done = (
        update(Execution)
        .where(Execution.id == bindparam("execution_id"), Execution.status == "running")
        .values(
            status=bindparam("ended_as"),
            end_time=end_time,
            duration=bindparam("duration_ms"),
            result=bindparam("result_value"),
            error=bindparam("error_text"),
            # Nothing held when it was queued: it is free. Else what settling the hold
            # charges (``charge_as`` at the price, capped at the hold), settled next in the
            # same transaction.
            charge_status=case(
                (Execution.hold_transaction_id.is_(None), "free"), else_=bindparam("charge_as")
            ),
            charge_amount=case(
                (Execution.hold_transaction_id.is_(None), 0),
                else_=func.least(
                    bindparam("price", type_=Numeric(20, 8)),
                    select(Transaction.amount)
                    .where(Transaction.id == Execution.hold_transaction_id)
                    .scalar_subquery(),
                ),
            ),
        )
        .returning(
            Execution.user_id,
            Execution.function_id,
            Execution.hold_transaction_id,
            Execution.charge_amount,
        )
        .cte("done")
    )
    # One UPDATE of the counters: exact under any number of concurrent executions.
    return (
        update(Function)
        .where(Function.id == done.c.function_id)
        .values(
            execution_count=Function.execution_count + 1,
            last_execution=func.greatest(
                func.coalesce(Function.last_execution, end_time), end_time
            ),
        )
        .returning(
            done.c.user_id, done.c.function_id, done.c.hold_transaction_id, done.c.charge_amount
        )
    )


def claim(session: Session, execution_id: int, claimed_by: str) -> Claimed | None:
    """Mark a queued execution running (committed, recording ``claimed_by``: the worker
    process and a token of the call) and read the version it runs; None if it is not queued
    any more (unless ``claimed_by`` claimed it: claiming again with the same token is safe).
    Call it first in a new session: the session's connection runs in autocommit mode.

    One statement, the claim joined with its version, committed on its own: with no BEGIN
    and COMMIT around it, claiming costs one round trip on the path of every execution.
    """
    connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    row = connection.execute(
        _claim_statement(), {"execution_id": execution_id, "claimed_by": claimed_by}
    ).one_or_none()
    session.commit()
    if row is None:
        return None
    code = (
        None
        if row.source_code is None
        else Code(row.source_code, row.timeout, row.memory, list(row.secrets or []))
    )
    return Claimed(
        execution_id,
        row.function_id,
        row.user_id,
        row.version,
        row.input,
        row.trigger,
        row.start_time,
        code,
    )


def finish(
    session: Session,
    settings: Settings,
    execution_id: int,
    outcome: Outcome,
    *,
    end_time: dt.datetime | None = None,
    calls: list[actions.Call] | None = None,
    dispatcher: Dispatcher | None = None,
    billed: bool = True,
) -> bool:
    """Record the terminal status, logs, counters and charge together; False if the
    execution was not running any more (finished by someone else: nothing is written).

    The execution's hold is settled to the price of what ran (capped at the hold, the rest
    refunded), or released when ``billed`` is False (an execution the service lost) or the
    run costs nothing. An execution queued without a hold is free.

    ``calls`` (checked ``neo.invoke`` actions of an execution that succeeded) are queued in
    the same transaction, their relay jobs sent by ``dispatcher`` after the commit.

    The caller's session commits here (this is the executor's unit of work).
    """
    end_time = end_time or dt.datetime.now(dt.UTC)
    outcome = _storable(outcome)
    price = execution_price(settings, outcome.duration_ms)
    charging = billed and price > 0
    # The terminal status, the charge and the function's counters in one statement.
    row = (
        session.connection()
        .execute(
            _finish_statement(),
            {
                "execution_id": execution_id,
                "ended_as": outcome.status,
                "ended_at": end_time,
                "duration_ms": outcome.duration_ms,
                "result_value": outcome.result if outcome.status == "succeeded" else None,
                "error_text": outcome.error,
                "charge_as": "charged" if charging else "free",
                "price": price if charging else 0,
            },
        )
        .one_or_none()
    )
    if row is None:
        session.rollback()
        return False
    user_id = row.user_id
    if outcome.logs:
        session.execute(
            insert(ExecutionLog),
            [
                {
                    "execution_id": execution_id,
                    "timestamp": line.timestamp,
                    "level": line.level,
                    "message": line.message,
                }
                for line in outcome.logs
            ],
        )
    if calls and outcome.status == "succeeded":
        if dispatcher is None:
            raise ValueError("actions to queue need a dispatcher")
        for position, call in enumerate(calls):
            actions.queue(
                session,
                dispatcher,
                user_id,
                call,
                execution_id=execution_id,
                position=position,
                limit=settings.actions_in_flight_per_tenant,
            )
    if row.hold_transaction_id is not None:
        lost = "the execution was lost with its executor"
        settled = _settle(
            session,
            row.hold_transaction_id,
            price if charging else None,
            lost if not billed else "free",
        )
        if settled != row.charge_amount:
            # The hold was released before (only deleting the function does that, and the
            # execution goes with it): nothing was charged.
            session.execute(
                update(Execution)
                .where(Execution.id == execution_id)
                .values(charge_status="free", charge_amount=0),
                execution_options=_DML,
            )
    if dispatcher is not None:
        # Its slot is free: the tenant's next waiting execution may go. After the settle:
        # the account's lock, then the tenant's dispatch lock, the order of every producer.
        executions.release(session, dispatcher, [user_id], settings.executions_per_tenant)
        # Whoever waits (``?wait``) is woken with the released jobs, in one round trip.
        executions.announce_after_commit(session, dispatcher, execution_id)
    session.commit()
    return True


def _settle(session: Session, transaction_id: int, price: Decimal | None, reason: str) -> Decimal:
    """Settle an execution's hold at ``price`` (capped at the hold), or release it with
    ``reason`` when ``price`` is None; what was charged (0 also when the hold was no longer
    pending)."""
    if price is not None:
        charged = ledger.settle_hold(session, transaction_id, price, None)
        return Decimal(0) if charged is None else charged
    ledger.release_hold(session, transaction_id, reason)
    return Decimal(0)


def _clean(value: Any) -> Any:
    """``value`` without NUL characters, which PostgreSQL's text and jsonb cannot hold."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def _storable(outcome: Outcome) -> Outcome:
    # The sandbox cuts a function's error to MAX_ERROR_BYTES; the errors the executor builds
    # (a refused action, a sandbox failure) are cut the same way here.
    return dataclasses.replace(
        outcome,
        result=_clean(outcome.result),
        error=None if outcome.error is None else _clean(cut_error(outcome.error)),
        logs=[dataclasses.replace(line, message=_clean(line.message)) for line in outcome.logs],
    )


Runner = Callable[[RunRequest], Outcome]


def checked_actions(outcome: Outcome) -> tuple[Outcome, list[actions.Call]]:
    """The outcome's ``neo.invoke`` actions, checked; a failed outcome (and no actions)
    when one cannot be mapped: the execution fails with a message naming it."""
    if outcome.status != "succeeded" or not outcome.actions:
        return outcome, []
    calls: list[actions.Call] = []
    for index, action in enumerate(outcome.actions):
        try:
            calls.append(actions.check(action.contract, action.method, action.args))
        except InvalidInput as exc:
            error = f"neo.invoke #{index} ({action.method}): {exc.message}"
            return dataclasses.replace(outcome, status="failed", result=None, error=error), []
    return outcome, calls


def run_execution(
    sessions: sessionmaker[Session],
    settings: Settings,
    run: Runner,
    execution_id: int,
    dispatcher: Dispatcher | None = None,
    *,
    worker_name: str,
) -> str:
    """Run a queued execution in the worker process ``worker_name``; returns its terminal
    status, or "skipped" if it was not queued (already started or finished, or deleted with
    its function).

    A database outage shorter than ``NSL_DB_OUTAGE_SECONDS`` fails nothing: the claim and
    the finish are tried again until the database answers. Both are safe to repeat: the
    claim is this call's own (a token no other call has), the finish writes only while the
    execution is still running.
    """
    token = f"{worker_name}:{secrets.token_hex(4)}"

    def claim_and_read() -> tuple[Claimed, dict[str, str]] | None:
        with sessions() as session:
            claimed = claim(session, execution_id, token)
            if claimed is None or claimed.code is None:
                return None if claimed is None else (claimed, {})
            granted = granted_secrets(
                session, settings.secrets_keys, claimed.user_id, claimed.code.secrets
            )
            session.commit()
            return claimed, granted

    started = ride_out(claim_and_read, seconds=settings.db_outage_seconds, what="claim")
    if started is None:
        return "skipped"
    claimed, granted = started
    code = claimed.code
    if code is None:
        outcome = Outcome("failed", error="the function's version no longer exists")
        _finish_riding_out(sessions, settings, execution_id, outcome, [], dispatcher)
        return outcome.status
    job = RunRequest(
        source=code.source_code,
        input=claimed.input,
        ctx={
            "executionId": execution_id,
            "functionId": claimed.function_id,
            "version": claimed.version,
            "trigger": claimed.trigger,
            "secrets": granted,
        },
        limits=Limits(
            timeout_seconds=code.timeout,
            memory_mb=code.memory,
            neo_calls=settings.neo_calls_per_execution,
            neo_actions=settings.neo_actions_per_execution if dispatcher is not None else 0,
        ),
    )
    trigger = claimed.trigger if isinstance(claimed.trigger, dict) else {}
    with logs.context(execution_id=execution_id, trigger_id=trigger.get("trigger_id")):
        try:
            outcome = run(job)
        except Exception as exc:
            # The sandbox pool itself failed (not the function): record it, never retry the code.
            log.exception("execution %s: the sandbox failed", execution_id)
            outcome = Outcome("failed", error=f"the sandbox failed: {type(exc).__name__}")
        outcome, calls = checked_actions(outcome)
        _finish_riding_out(sessions, settings, execution_id, outcome, calls, dispatcher)
        log.info("execution %s %s in %s ms", execution_id, outcome.status, outcome.duration_ms)
    return outcome.status


def _finish_riding_out(
    sessions: sessionmaker[Session],
    settings: Settings,
    execution_id: int,
    outcome: Outcome,
    calls: list[actions.Call],
    dispatcher: Dispatcher | None,
) -> None:
    """Record a finished run, trying again while the database is unavailable: the outcome
    is kept in memory meanwhile. A retry after a commit that did go through finds the
    execution finished and writes nothing."""

    attempts = 0

    def write() -> bool:
        nonlocal attempts
        attempts += 1
        with sessions() as session:
            done = finish(
                session, settings, execution_id, outcome, calls=calls, dispatcher=dispatcher
            )
            if not done and attempts > 1 and dispatcher is not None:
                # An earlier attempt's commit went through unseen: the executions it
                # released to the tenant's share were never sent, nor its announcement.
                # Send them now.
                user_id = session.scalar(
                    select(Execution.user_id).where(Execution.id == execution_id)
                )
                if user_id is not None:
                    executions.resend_dispatched(session, dispatcher, user_id)
                    executions.announce_after_commit(session, dispatcher, execution_id)
                    session.commit()
            return done

    ride_out(write, seconds=settings.db_outage_seconds, what=f"execution {execution_id}")


def lost_outcome(start_time: dt.datetime | None, timeout: int, now: dt.datetime) -> Outcome:
    """How an execution abandoned by a dead executor ends: failed, with at most its timeout
    as its duration (how long it really ran is unknown); its hold is released, not charged
    (``finish(…, billed=False)``)."""
    ran = (now - start_time).total_seconds() if start_time else 0.0
    duration_ms = int(min(max(ran, 0.0), float(timeout)) * 1000)
    return Outcome(
        "failed",
        error="worker lost: the executor running it stopped before it finished",
        logs=[LogLine("error", "worker lost", now)],
        duration_ms=duration_ms,
    )
