"""A short database outage fails no execution: PostgreSQL restarted (every connection cut,
every open transaction aborted) while executions are being claimed, run and finished. The executor
keeps each finished run's outcome and writes it once the database answers again; every
execution succeeds, each is charged exactly once, and the ledger's check holds.
"""

from __future__ import annotations

import signal
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from neosl.celery_app import ServiceApp
from neosl.gas import ledger
from neosl.models import Execution, GasAccount
from neosl_devstack.stack import Stack
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


def restart_postgres(stack: Stack) -> None:
    """Stop PostgreSQL (SIGINT: a fast shutdown, which ends every connection and aborts every
    transaction at once), then start it again on the same port.

    Not an immediate shutdown: the test servers run without fsync (durable=False), so one
    would also lose commits already made, which a real server does not.
    """
    server = stack.postgres
    assert server is not None
    assert server.process is not None
    server.process.send_signal(signal.SIGINT)
    server.process.wait(30)
    server.stop()
    server.start()


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

    def statuses() -> dict[str, int] | None:
        try:
            with sessions() as db:
                rows = db.query(Execution.status).filter(Execution.id.in_(ids)).all()
        except (OperationalError, InterfaceError):
            return None
        counts: dict[str, int] = {}
        for (status,) in rows:
            counts[status] = counts.get(status, 0) + 1
        return counts

    # Down while some run and others wait to be claimed.
    wait_until(lambda: (statuses() or {}).get("running"), "executions to start", timeout=30)
    restart_postgres(stack)

    done = wait_until(
        lambda: (
            s if (s := statuses()) and s.get("succeeded", 0) + s.get("failed", 0) == COUNT else None
        ),
        "every execution to finish",
        timeout=120,
    )
    assert done == {"succeeded": COUNT}
    with sessions() as db:
        executions = db.query(Execution).filter(Execution.id.in_(ids)).all()
        total = Decimal(0)
        for execution in executions:
            assert execution.charge_status == "charged", execution.id
            assert execution.duration is not None
            assert execution.charge_amount == price(execution.duration)
            total += execution.charge_amount
        assert db.get_one(GasAccount, t.account_id).balance == Decimal(1) - total
        assert ledger.verify(db) == []
    for execution_id in ids:
        assert paid(sessions, execution_id) > 0
