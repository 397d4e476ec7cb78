"""A short outage fails no execution.

- PostgreSQL restarted (every connection cut, every open transaction aborted) while executions
  are being claimed, run and finished: the executor keeps each finished run's outcome and
  writes it once the database answers again.
- Redis restarted empty (the test servers keep no append-only file, so every queued message is
  lost, the harder case of a broker restart) while executions run: the workers reconnect, the
  runs in flight finish, and the reaper sends again the jobs whose messages were lost.

Either way every execution succeeds, each is charged exactly once, and the ledger's check holds.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import signal
from collections.abc import Callable
from decimal import Decimal

import pytest
from flask import Flask
from kombu.exceptions import KombuError
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.celery_app import ServiceApp, make_celery
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.functions.sandbox.types import Outcome
from neosl.gas import ledger
from neosl.models import Execution, GasAccount
from neosl_api.app import create_app
from neosl_devstack.servers import ManagedServer
from neosl_devstack.stack import Stack
from neosl_executor import reaper, runner
from tests.functions.test_executor import (  # noqa: F401 (fixtures)
    api,
    executor,
    funded_tenant,
    paid,
    price,
    priced,
    sessions,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.celery

# About 300 ms of CPU each: 24 of them keep the executor's 8 threads busy for a second or so.
BUSY = "function main() { const end = Date.now() + 300; while (Date.now() < end) {} return 1 }"
COUNT = 24


def restart(server: ManagedServer | None, how: signal.Signals = signal.SIGTERM) -> None:
    """Stop a server with ``how``, then start it again on the same port."""
    assert server is not None
    assert server.process is not None
    server.process.send_signal(how)
    server.process.wait(30)
    server.stop()
    server.start()


def restart_postgres(stack: Stack) -> None:
    """Stop PostgreSQL (SIGINT: a fast shutdown, which ends every connection and aborts every
    transaction at once), then start it again on the same port.

    Not an immediate shutdown: the test servers run without fsync (durable=False), so one
    would also lose commits already made, which a real server does not.
    """
    restart(stack.postgres, signal.SIGINT)


def statuses(factory: sessionmaker[Session], ids: list[int]) -> dict[str, int] | None:
    """How many of ``ids`` are in each status; None while the database does not answer."""
    try:
        with factory() as db:
            rows = db.query(Execution.status).filter(Execution.id.in_(ids)).all()
    except (OperationalError, InterfaceError):
        return None
    counts: dict[str, int] = {}
    for (status,) in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def all_finished(
    factory: sessionmaker[Session], ids: list[int], tick: Callable[[], object] = lambda: None
) -> dict[str, int]:
    """Wait until every one of ``ids`` has finished (calling ``tick`` between looks)."""

    seen: list[dict[str, int] | None] = [None]

    def finished() -> dict[str, int] | None:
        tick()
        s = seen[0] = statuses(factory, ids)
        return s if s and s.get("succeeded", 0) + s.get("failed", 0) == len(ids) else None

    try:
        done: dict[str, int] = wait_until(finished, "every execution to finish", timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen[0]}") from None
    return done


def assert_charged_once(factory: sessionmaker[Session], account_id: int, ids: list[int]) -> None:
    """Each execution charged its price once; the balance and the ledger agree."""
    with factory() as db:
        executions = db.query(Execution).filter(Execution.id.in_(ids)).all()
        total = Decimal(0)
        for execution in executions:
            assert execution.charge_status == "charged", execution.id
            assert execution.duration is not None
            assert execution.charge_amount == price(execution.duration)
            total += execution.charge_amount
        assert db.get_one(GasAccount, account_id).balance == Decimal(1) - total
        assert ledger.verify(db) == []
    for execution_id in ids:
        assert paid(factory, execution_id) > 0


def test_a_database_restart_mid_run_fails_no_execution_and_charges_none_twice(
    stack: Stack,
    api: Flask,  # noqa: F811
    executor: ServiceApp,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    if stack.postgres is None:
        pytest.skip("DATABASE_URL names an outside server: it is not ours to restart")
    t = funded_tenant(api, sessions)
    fn = t.function(BUSY)
    ids = [t.invoke(fn["id"]).get_json()["execution_id"] for _ in range(COUNT)]

    # Down while some run and others wait to be claimed.
    wait_until(lambda: (statuses(sessions, ids) or {}).get("running"), "executions to start")
    restart_postgres(stack)

    assert all_finished(sessions, ids) == {"succeeded": COUNT}
    assert_charged_once(sessions, t.account_id, ids)


def test_a_broker_restart_mid_run_fails_no_execution_and_charges_none_twice(
    stack: Stack,
    api: Flask,  # noqa: F811
    executor: ServiceApp,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
    priced: Settings,  # noqa: F811
) -> None:
    if stack.redis is None:
        pytest.skip("REDIS_URL names an outside server: it is not ours to restart")
    t = funded_tenant(api, sessions)
    fn = t.function(BUSY)
    ids = [t.invoke(fn["id"]).get_json()["execution_id"] for _ in range(COUNT)]

    wait_until(lambda: (statuses(sessions, ids) or {}).get("running"), "executions to start")
    restart(stack.redis)

    # The reaper, as the executor's beat runs it: jobs lost with the broker's lists are sent
    # again once they have waited the requeue delay (the smallest allowed here).
    hurried = dataclasses.replace(priced, execution_requeue_seconds=5)
    dispatcher = Dispatcher(make_celery(hurried, "test-reaper"))

    def reap() -> None:
        # While the broker is still coming back, the next tick tries again.
        with contextlib.suppress(OperationalError, KombuError, RedisError):
            reaper.reap(sessions, hurried, dispatcher)

    assert all_finished(sessions, ids, tick=reap) == {"succeeded": COUNT}
    assert_charged_once(sessions, t.account_id, ids)


class CutOffAfterCommit(Session):
    """A session whose first commit goes through but answers with an outage, as when the
    database restarts between doing the commit and saying so."""

    cut = True

    def commit(self) -> None:
        if not CutOffAfterCommit.cut:
            super().commit()
            return
        CutOffAfterCommit.cut = False
        # The server commits; the session never hears of it (nor sends its jobs).
        dbapi = self.connection().connection.dbapi_connection
        assert dbapi is not None
        dbapi.commit()
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))


def sent_executions(redis_client: Redis) -> list[int]:
    """The execution ids of the jobs waiting in the executor's queue."""
    ids = []
    for message in redis_client.lrange(jobs.EXECUTOR_QUEUE, 0, -1):
        _, kwargs, _ = json.loads(base64.b64decode(json.loads(message)["body"]))
        ids.append(kwargs["execution_id"])
    return sorted(ids)


def test_a_finish_whose_commit_was_cut_off_still_sends_what_it_released(
    sessions: sessionmaker[Session],  # noqa: F811
    priced: Settings,  # noqa: F811
    redis_client: Redis,
    sandbox: SandboxPool,
) -> None:
    one_at_a_time = dataclasses.replace(priced, executions_per_tenant=1)
    app = create_app(one_at_a_time, session_factory=sessions, redis=redis_client, sandbox=sandbox)
    t = funded_tenant(app, sessions)
    fn = t.function("function main() { return 1 }")
    redis_client.delete(jobs.EXECUTOR_QUEUE)
    first, second = (t.invoke(fn["id"]).get_json()["execution_id"] for _ in range(2))
    assert sent_executions(redis_client) == [first]  # the second waits for the first's slot
    redis_client.delete(jobs.EXECUTOR_QUEUE)
    with sessions() as db:
        assert runner.claim(db, first, "test:1") is not None
    CutOffAfterCommit.cut = True
    cutting: sessionmaker[Session] = sessionmaker(
        bind=sessions.kw["bind"], class_=CutOffAfterCommit
    )
    dispatcher = Dispatcher(make_celery(one_at_a_time, "test-finish"))
    runner._finish_riding_out(
        cutting, one_at_a_time, first, Outcome("succeeded", result=1, duration_ms=5), [], dispatcher
    )
    assert CutOffAfterCommit.cut is False
    # The first attempt committed (finished, the second released) but sent nothing; the
    # second attempt found it finished and sent the released one's job.
    assert sent_executions(redis_client) == [second]
    with sessions() as db:
        assert db.get_one(Execution, first).status == "succeeded"
        assert db.get_one(Execution, second).dispatched_at is not None
        assert ledger.verify(db) == []
