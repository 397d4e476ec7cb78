"""Fair share: one tenant's backlog delays no other tenant. A tenant has at most
``NSL_EXECUTIONS_PER_TENANT`` executions dispatched to the executor at once; the rest wait in
PostgreSQL and are dispatched, in order, as its executions end."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from celery import Celery
from flask import Flask
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from neosl.celery_app import ServiceApp
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions import executions
from neosl.gas import ledger
from neosl.models import Execution
from tests.factories import make_function, make_user
from tests.functions.test_executor import (  # noqa: F401 (fixtures)
    BASE,
    PER_100MS,
    api,
    executor,
    funded_tenant,
    sessions,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.celery

SHARE = 2
# About 300 ms of CPU each.
SLOW = "function main() { const end = Date.now() + 300; while (Date.now() < end) {} return 1 }"


@pytest.fixture
def priced(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        function_base_fee=BASE,
        function_fee_per_100ms=PER_100MS,
        executions_per_tenant=SHARE,
    )


def states(factory: sessionmaker[Session], ids: list[int]) -> tuple[int, int, int]:
    """(running, dispatched and queued, waiting) among ``ids``."""
    with factory() as db:
        rows = db.execute(
            select(Execution.status, Execution.dispatched_at.is_not(None), func.count())
            .where(Execution.id.in_(ids))
            .group_by(Execution.status, Execution.dispatched_at.is_not(None))
        ).all()
    count = {(status, sent): n for status, sent, n in rows}
    return (
        count.get(("running", True), 0),
        count.get(("queued", True), 0),
        count.get(("queued", False), 0),
    )


def test_a_tenants_backlog_delays_no_other_tenant(
    api: Flask,  # noqa: F811
    executor: ServiceApp,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    greedy = funded_tenant(api, sessions, "5", "greedy")
    other = funded_tenant(api, sessions, "5", "other")
    slow = greedy.function(SLOW)
    quick = other.function("function main() { return 2 }")
    backlog = [greedy.invoke(slow["id"]).get_json()["execution_id"] for _ in range(16)]
    # Only its share was sent to the executor; the rest wait in PostgreSQL (but those that
    # took the place of executions already finished, on a slow machine).
    running, sent, waiting = states(sessions, backlog)
    with sessions() as db:
        finished = db.scalar(
            select(func.count()).where(Execution.id.in_(backlog), Execution.end_time.is_not(None))
        )
    assert running + sent <= SHARE
    assert waiting >= len(backlog) - SHARE - (finished or 0)

    answer = other.invoke(quick["id"], wait=20)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["result"] == 2
    # The other tenant's execution ran while most of the backlog still waited: it was not
    # queued behind it.
    assert states(sessions, backlog)[2] >= len(backlog) // 2

    most_at_once = 0

    def drained() -> bool:
        nonlocal most_at_once
        running, sent, waiting = states(sessions, backlog)
        most_at_once = max(most_at_once, running + sent)
        return running + sent + waiting == 0

    wait_until(drained, "the backlog to run", timeout=60, every=0.05)
    assert most_at_once <= SHARE
    with sessions() as db:
        done = db.scalars(select(Execution).where(Execution.id.in_(backlog))).all()
        assert {e.status for e in done} == {"succeeded"}
        assert {e.charge_status for e in done} == {"charged"}
        assert ledger.verify(db) == []


def test_two_releases_at_once_never_exceed_the_share(
    committed_db: Engine, producer: Celery
) -> None:
    """The second release waits for the first one's lock, then counts what it committed."""
    with Session(committed_db) as db:
        user = make_user(db)
        fn = make_function(db, user)
        db.add_all(
            Execution(function_id=fn.id, user_id=user.id, version=1, timeout=30, status="queued")
            for _ in range(6)
        )
        db.commit()
        user_id = user.id
    dispatcher = Dispatcher(producer)
    first = Session(committed_db)
    second = Session(committed_db)
    try:
        assert len(executions.release(first, dispatcher, [user_id], 4)) == 4
        got: list[list[int]] = []
        waiter = threading.Thread(
            target=lambda: got.append(executions.release(second, dispatcher, [user_id], 4))
        )
        waiter.start()
        # It waits for the first one's lock (not for a row: the rows it could take are free).
        wait_until(lambda: blocked_on_advisory_lock(committed_db), "the second release to wait")
        assert got == []
        first.commit()
        waiter.join(10)
        second.commit()
    finally:
        first.close()
        second.close()
    assert got == [[]]
    with Session(committed_db) as db:
        dispatched = db.scalar(
            select(func.count()).where(
                Execution.user_id == user_id, Execution.dispatched_at.is_not(None)
            )
        )
    assert dispatched == 4


def blocked_on_advisory_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        )
