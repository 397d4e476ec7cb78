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
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import balances
from neosl.billing import charge_reference, execution_price
from neosl.config import Settings
from neosl.models import Execution, ExecutionLog, Function, FunctionVersion
from neosl.sandbox.types import Job, Limits, LogLine, Outcome
from neosl.secretbox import granted_secrets

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claimed:
    execution_id: int
    function_id: int
    user_id: int
    version: int
    input: Any
    trigger: Any
    start_time: dt.datetime


def claim(session: Session, execution_id: int) -> Claimed | None:
    """Mark a queued execution running (committed); None if it is not queued any more."""
    row = session.execute(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status == "queued")
        .values(status="running", start_time=func.now(), worker=WORKER_NAME)
        .returning(
            Execution.function_id,
            Execution.user_id,
            Execution.version,
            Execution.input,
            Execution.trigger,
            Execution.start_time,
        )
    ).one_or_none()
    session.commit()
    if row is None:
        return None
    return Claimed(execution_id, *row)


def finish(
    session: Session,
    settings: Settings,
    execution_id: int,
    outcome: Outcome,
    *,
    end_time: dt.datetime | None = None,
) -> bool:
    """Record the terminal status, logs, counters and charge together; False if the
    execution was not running any more (finished by someone else: nothing is written).

    The caller's session commits here (this is the executor's unit of work).
    """
    end_time = end_time or dt.datetime.now(dt.UTC)
    outcome = _storable(outcome)
    row = session.execute(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status == "running")
        .values(
            status=outcome.status,
            end_time=end_time,
            duration=outcome.duration_ms,
            result=outcome.result if outcome.status == "succeeded" else None,
            error=outcome.error,
        )
        .returning(Execution.user_id, Execution.function_id)
    ).one_or_none()
    if row is None:
        session.rollback()
        return False
    user_id, function_id = row
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
    # One UPDATE: exact under any number of concurrent executions.
    session.execute(
        update(Function)
        .where(Function.id == function_id)
        .values(
            execution_count=Function.execution_count + 1,
            last_execution=func.greatest(
                func.coalesce(Function.last_execution, end_time), end_time
            ),
        )
    )
    amount = execution_price(settings, outcome.duration_ms)
    if amount > 0:
        charged = balances.charge(
            session, user_id, "function", amount, charge_reference(execution_id)
        )
        charge_status = charged.status.value
    else:
        charge_status = "free"
    session.execute(
        update(Execution)
        .where(Execution.id == execution_id)
        .values(charge_status=charge_status, charge_amount=amount)
    )
    session.commit()
    if charge_status not in ("charged", "duplicate", "free"):
        log.warning("execution %s was not paid for: %s", execution_id, charge_status)
    return True


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
    return dataclasses.replace(
        outcome,
        result=_clean(outcome.result),
        error=_clean(outcome.error),
        logs=[dataclasses.replace(line, message=_clean(line.message)) for line in outcome.logs],
    )


Runner = Callable[[Job], Outcome]


def run_execution(
    sessions: sessionmaker[Session],
    settings: Settings,
    run: Runner,
    execution_id: int,
) -> str:
    """Run a queued execution; returns its terminal status, or "skipped" if it was not
    queued (already started or finished, or deleted with its function)."""
    with sessions() as session:
        claimed = claim(session, execution_id)
        if claimed is None:
            return "skipped"
        version = session.get(FunctionVersion, (claimed.function_id, claimed.version))
        if version is None:
            outcome = Outcome("failed", error="the function's version no longer exists")
            finish(session, settings, execution_id, outcome)
            return outcome.status
        secrets = granted_secrets(
            session, settings.secrets_keys, claimed.user_id, list(version.secrets or [])
        )
        session.commit()
    job = Job(
        source=version.source_code,
        input=claimed.input,
        ctx={
            "executionId": execution_id,
            "functionId": claimed.function_id,
            "version": claimed.version,
            "trigger": claimed.trigger,
            "secrets": secrets,
        },
        limits=Limits(timeout_seconds=version.timeout, memory_mb=version.memory),
    )
    try:
        outcome = run(job)
    except Exception as exc:
        # The sandbox pool itself failed (not the function): record it, never retry the code.
        log.exception("execution %s: the sandbox failed", execution_id)
        outcome = Outcome("failed", error=f"the sandbox failed: {type(exc).__name__}")
    with sessions() as session:
        finish(session, settings, execution_id, outcome)
    return outcome.status


def lost_outcome(start_time: dt.datetime | None, timeout: int, now: dt.datetime) -> Outcome:
    """How an execution abandoned by a dead executor ends: failed, charged for at most its
    timeout (how long it really ran is unknown)."""
    ran = (now - start_time).total_seconds() if start_time else 0.0
    duration_ms = int(min(max(ran, 0.0), float(timeout)) * 1000)
    return Outcome(
        "failed",
        error="worker lost: the executor running it stopped before it finished",
        logs=[LogLine("error", "worker lost", now)],
        duration_ms=duration_ms,
    )
