"""Functions and their executions: save (compiled first), version, invoke, read.

A function's code, limits and grants are versioned: every change of one of them writes a
new ``function_versions`` row and bumps ``version``; earlier versions are kept, and an
execution records the version it ran. Name, description and status are not versioned.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from sqlalchemy import Row, Select, TextClause, bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.errors import Conflict, InvalidInput, NotFound, PaymentRequired
from neosl.functions import executions
from neosl.functions.executions import wait_done
from neosl.functions.sandbox.types import CompileError
from neosl.gas import ledger
from neosl.gas.money import format_amount
from neosl.gas.prices import hold_parameters
from neosl.models import Execution, ExecutionLog, Function, FunctionSecret, FunctionVersion
from neosl.models.functions import TERMINAL_STATUSES
from neosl_api.pagination import Page, paginate
from neosl_api.tenancy import get_owned, id_limit, owned_by

Compiler = Callable[[str], CompileError | None]
VERSIONED = ("source_code", "timeout", "memory", "secrets")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    source_code: str
    description: str | None = None
    timeout: int = 30
    memory: int = 128
    secrets: tuple[str, ...] = ()


def _check_source(compile_: Compiler, source: str) -> None:
    error = compile_(source)
    if error is not None:
        where = f" (line {error.line}, column {error.column})" if error.line else ""
        raise InvalidInput(
            f"the source does not compile: {error.message}{where}",
            {
                "source_code": [error.message],
                "line": [str(error.line)] if error.line else [],
                "column": [str(error.column)] if error.column else [],
            },
        )


def _name_taken() -> Conflict:
    return Conflict("a function with this name exists", {"name": ["Already used by a function."]})


def _grant(fn: Function, names: tuple[str, ...]) -> None:
    fn.grants = [FunctionSecret(secret_name=name) for name in sorted(set(names))]


def _snapshot(session: Session, fn: Function, names: tuple[str, ...]) -> None:
    session.add(
        FunctionVersion(
            function_id=fn.id,
            version=fn.version,
            source_code=fn.source_code,
            timeout=fn.timeout,
            memory=fn.memory,
            secrets=sorted(set(names)),
        )
    )


def create_function(
    session: Session, compile_: Compiler, user_id: int, spec: FunctionSpec
) -> Function:
    """Save a new function as version 1, after compiling its source.

    Raises:
        InvalidInput: the source does not compile (message, line and column).
        Conflict: the tenant has a function of this name.
    """
    _check_source(compile_, spec.source_code)
    fn = Function(
        user_id=user_id,
        name=spec.name,
        description=spec.description,
        source_code=spec.source_code,
        timeout=spec.timeout,
        memory=spec.memory,
        version=1,
        status="active",
    )
    _grant(fn, spec.secrets)
    session.add(fn)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _name_taken() from None
    _snapshot(session, fn, spec.secrets)
    session.commit()
    return fn


def list_functions(
    session: Session, user_id: int, limit: int, cursor: str | None
) -> Page[Function]:
    return paginate(session, owned_by(Function, user_id), Function.id, limit=limit, cursor=cursor)


def get_function(session: Session, user_id: int, function_id: int) -> Function:
    return get_owned(session, Function, function_id, user_id)


def update_function(
    session: Session,
    compile_: Compiler,
    user_id: int,
    function_id: int,
    changes: dict[str, Any],
) -> Function:
    """Change a function; a change of code, limits or grants makes a new version.

    Raises:
        NotFound: no such function of this tenant.
        InvalidInput: the new source does not compile.
        Conflict: the new name is taken.
    """
    fn = get_owned(session, Function, function_id, user_id, for_update=True)
    names = tuple(fn.secrets)
    new_names = tuple(sorted(set(changes.get("secrets", names))))
    bump = False
    if "source_code" in changes and changes["source_code"] != fn.source_code:
        _check_source(compile_, changes["source_code"])
        fn.source_code = changes["source_code"]
        bump = True
    for field in ("timeout", "memory"):
        if field in changes and changes[field] != getattr(fn, field):
            setattr(fn, field, changes[field])
            bump = True
    if new_names != names:
        _grant(fn, new_names)
        bump = True
    for field in ("name", "description", "status"):
        if field in changes:
            setattr(fn, field, changes[field])
    if bump:
        fn.version += 1
        _snapshot(session, fn, new_names)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _name_taken() from None
    return fn


def delete_function(session: Session, user_id: int, function_id: int) -> None:
    """Delete a function, its versions, executions and logs. What its unfinished executions
    hold is released: they will not run.

    Raises:
        NotFound: no such function of this tenant.
    """
    fn = get_owned(session, Function, function_id, user_id, for_update=True)
    holds = session.scalars(
        select(Execution.hold_transaction_id).where(
            Execution.function_id == function_id,
            Execution.status.in_(("queued", "running")),
            Execution.hold_transaction_id.is_not(None),
        )
    ).all()
    for transaction_id in holds:
        if transaction_id is not None:
            ledger.release_hold(session, transaction_id, "the function was deleted")
    session.delete(fn)
    session.commit()


def list_versions(
    session: Session, user_id: int, function_id: int, limit: int, cursor: str | None
) -> Page[FunctionVersion]:
    get_function(session, user_id, function_id)
    stmt = select(FunctionVersion).where(FunctionVersion.function_id == function_id)
    return paginate(session, stmt, FunctionVersion.version, limit=limit, cursor=cursor)


def get_version(session: Session, user_id: int, function_id: int, version: int) -> FunctionVersion:
    get_function(session, user_id, function_id)
    row = session.get(FunctionVersion, (function_id, version)) if 0 < version < 2**31 else None
    if row is None:
        raise NotFound(f"version {version} of function {function_id} not found")
    return row


@functools.cache
def _invoke_statement() -> TextClause:
    """The function's check, the hold and the execution's row in one statement.

    Built once: building it costs more than running it, and invoking is the hot path. The
    hold is ``gas.prices.execution_hold`` of the function's timeout (base fee + per-100 ms
    fee x 10 x timeout seconds), written as ``ledger.hold`` writes one: a pending
    ``function`` charge with reference ``execution:<id>``, the default account locked and
    debited. Nothing is held when that price is 0; nothing is written when the function is
    not active, or when a hold is due and the account cannot cover it.
    """
    return text(
        """
        WITH fn AS (
            SELECT id, user_id, version, timeout,
                   CAST(:base_fee AS numeric) + CAST(:fee_per_100ms AS numeric) * 10 * timeout
                       AS held
            FROM functions
            WHERE id = :function_id AND user_id = :user_id AND status = 'active'
        ), new AS (
            SELECT nextval(pg_get_serial_sequence('executions', 'id')) AS id FROM fn
        ), acct AS (
            SELECT g.id, g.balance FROM gas_accounts g
            WHERE g.user_id = :user_id AND g.is_default AND g.deleted_at IS NULL
              AND EXISTS (SELECT 1 FROM fn WHERE fn.held > 0)
            FOR UPDATE
        ), hold AS (
            INSERT INTO transactions (user_id, account_id, type, amount, status, reference)
            SELECT :user_id, acct.id, 'function', fn.held, 'pending', 'execution:' || new.id
            FROM acct, fn, new
            WHERE fn.held > 0 AND acct.balance >= fn.held
            RETURNING id, account_id, amount
        ), debit AS (
            UPDATE gas_accounts g SET balance = g.balance - hold.amount
            FROM hold WHERE g.id = hold.account_id
        ), queued AS (
            INSERT INTO executions (id, function_id, user_id, version, timeout, status, input,
                                    trigger, hold_transaction_id)
            SELECT new.id, fn.id, fn.user_id, fn.version, fn.timeout, 'queued', :input_value,
                   :trigger_value, (SELECT id FROM hold)
            FROM fn, new
            WHERE fn.held = 0 OR EXISTS (SELECT 1 FROM hold)
            RETURNING id
        )
        SELECT (SELECT id FROM queued) AS id, (SELECT timeout FROM fn) AS timeout,
               (SELECT held FROM fn) AS held, (SELECT id FROM acct) AS account_id
        """
    ).bindparams(
        bindparam("input_value", type_=Execution.input.type),
        bindparam("trigger_value", type_=Execution.trigger.type),
    )


# A "make default" committing while the statement waited for the old default's lock hides
# both accounts from it; a new statement sees the new default (as ``ledger.hold`` does).
_NO_ACCOUNT_RECHECKS = 3


def invoke(
    session: Session,
    settings: Settings,
    dispatcher: Dispatcher,
    user_id: int,
    function_id: int,
    input_: Any,
    trigger: Any = None,
) -> int:
    """Queue an execution of the function's current version; the executor runs it.
    Returns the execution's id.

    When executions cost something, the most this one can cost (its timeout at the
    per-100 ms fee) is held on the tenant's default account in the same statement; the
    executor settles the hold to what really ran.

    Raises:
        NotFound: no such function of this tenant.
        Conflict: the function is paused.
        PaymentRequired: the tenant's default account cannot cover the hold.
    """
    row: Row[Any] | None = None
    if 0 < function_id <= id_limit(Function.id):
        params = {
            "function_id": function_id,
            "user_id": user_id,
            "input_value": input_,
            "trigger_value": trigger,
            **hold_parameters(settings),
        }
        for _ in range(_NO_ACCOUNT_RECHECKS):
            row = session.connection().execute(_invoke_statement(), params).one()
            if row.timeout is None or row.held == 0 or row.account_id is not None:
                break
    if row is None or row.timeout is None:
        get_owned(session, Function, function_id, user_id)  # raises NotFound
        raise Conflict(f"function {function_id} is paused; resume it to invoke it")
    if row.id is None:
        session.rollback()
        held = format_amount(row.held)
        raise PaymentRequired(
            "your default gas account cannot pay for this execution: invoking holds "
            f"{held} GAS (a run until its {row.timeout} s timeout), settled "
            "to what really runs; deposit GAS first",
            {"balance": [f"Insufficient for the hold of {held} GAS."]},
        )
    execution_id: int = row.id
    # Dispatched now if the tenant has a free slot, else when one of its executions ends.
    executions.release(session, dispatcher, [user_id], settings.executions_per_tenant)
    session.commit()
    return execution_id


@dataclass(frozen=True)
class ExecutionFilter:
    function_id: int | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def list_executions(
    session: Session, user_id: int, f: ExecutionFilter, limit: int, cursor: str | None
) -> Page[Execution]:
    stmt: Select[Execution] = owned_by(Execution, user_id)
    if f.function_id is not None:
        stmt = stmt.where(Execution.function_id == f.function_id)
    if f.status is not None:
        stmt = stmt.where(Execution.status == f.status)
    if f.since is not None:
        stmt = stmt.where(Execution.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Execution.created_at < f.until)
    return paginate(session, stmt, Execution.id, limit=limit, cursor=cursor)


def get_execution(session: Session, user_id: int, execution_id: int) -> Execution:
    return get_owned(session, Execution, execution_id, user_id)


def list_logs(
    session: Session, user_id: int, execution_id: int, limit: int, cursor: str | None
) -> Page[ExecutionLog]:
    get_execution(session, user_id, execution_id)
    stmt = select(ExecutionLog).where(ExecutionLog.execution_id == execution_id)
    return paginate(session, stmt, ExecutionLog.id, limit=limit, cursor=cursor)


def wait_for(
    session: Session,
    redis: Redis,
    user_id: int,
    execution_id: int,
    seconds: float,
    *,
    limit: int,
) -> Execution | None:
    """The execution once finished, if that happens within ``seconds``; else None.

    At most ``limit`` requests of one tenant wait at once (across every API process): a
    request beyond them does not wait (None at once), so one tenant cannot hold every API
    thread. A waiter is counted until it ends, or ``seconds`` + 5 s if its process dies.
    """
    if seconds <= 0 or limit <= 0:
        return None
    key = f"nsl:waiting:{user_id}"
    waiter = secrets.token_hex(8)
    now = time.time()
    pipe = redis.pipeline()
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.zadd(key, {waiter: now + seconds + 5})
    pipe.zrank(key, waiter)
    pipe.expire(key, int(seconds) + 10)
    rank = pipe.execute()[2]
    try:
        if rank is None or rank >= limit:
            return None
        _wait_done(redis, execution_id, seconds)
    finally:
        redis.zrem(key, waiter)
    session.expire_all()
    execution = get_execution(session, user_id, execution_id)
    return execution if execution.status in TERMINAL_STATUSES else None


def _wait_done(redis: Redis, execution_id: int, seconds: float) -> None:
    # Blocking longer than the client's socket timeout would end in a TimeoutError (a 503
    # for a ?wait longer than the API's 2 s): wait in slices shorter than it. An
    # announcement made between two slices stays in its list for the next one.
    # The client's timeout is not always where it was given (redis-py keeps a default of
    # its own out of connection_kwargs): slices of at most a second are safe with any.
    kwargs = redis.connection_pool.connection_kwargs
    socket_timeout = kwargs.get("socket_timeout") or kwargs.get("orig_socket_timeout")
    step = min(socket_timeout / 2, 1.0) if socket_timeout else 1.0
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        # At least 10 ms: Redis reads a timeout under 1 ms as 0, "block forever".
        if wait_done(redis, execution_id, max(min(step, remaining), 0.01)):
            return
