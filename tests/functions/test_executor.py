"""Executions end to end: API → Redis → a real executor worker → sandbox → PostgreSQL.

Every execution ends in exactly one terminal status with one charge, runs at most once, and
is finished by the reaper when its executor dies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.celery_app import ServiceApp, make_celery
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.gas import ledger
from neosl.models import Execution, ExecutionLog, Function, GasAccount, Transaction
from neosl_api.app import create_app
from neosl_executor import reaper
from neosl_executor.tasks import ExecutorResources
from neosl_executor.worker import create_worker_app
from tests.factories import credit
from tests.gas.test_api import tenant
from tests.proofs import register_key
from tests.waiting import wait_until

pytestmark = pytest.mark.celery

BASE = Decimal("0.001")
PER_100MS = Decimal("0.0001")


@pytest.fixture
def priced(settings: Settings) -> Settings:
    return dataclasses.replace(settings, function_base_fee=BASE, function_fee_per_100ms=PER_100MS)


@pytest.fixture
def sessions(committed_db: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=committed_db, expire_on_commit=False)


@pytest.fixture
def api(
    priced: Settings,
    sessions: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> Flask:
    return create_app(priced, session_factory=sessions, redis=redis_client, sandbox=sandbox)


@pytest.fixture
def executor(priced: Settings, redis_client: Redis) -> Iterator[ServiceApp]:
    app = create_worker_app(priced)
    with start_worker(
        app,
        pool="threads",
        concurrency=8,
        perform_ping_check=False,
        queues=[jobs.EXECUTOR_QUEUE],
        shutdown_timeout=30,
    ):
        yield app


@dataclasses.dataclass
class Tenant:
    client: FlaskClient
    headers: dict[str, str]
    account_id: int

    def function(self, source: str, **fields: Any) -> dict[str, Any]:
        body = {"name": f"fn{os.urandom(4).hex()}", "source_code": source, **fields}
        resp = self.client.post("/v1/functions", json=body, headers=self.headers)
        assert resp.status_code == 201, resp.get_json()
        created: dict[str, Any] = resp.get_json()
        return created

    def invoke(self, function_id: int, input_: Any = None, wait: float = 0) -> Any:
        return self.client.post(
            f"/v1/functions/{function_id}/invoke?wait={wait}",
            json={"input": input_},
            headers=self.headers,
        )

    def run(self, source: str, input_: Any = None, **fields: Any) -> dict[str, Any]:
        fn = self.function(source, **fields)
        resp = self.invoke(fn["id"], input_, wait=20)
        assert resp.status_code == 200, resp.get_json()
        execution: dict[str, Any] = resp.get_json()
        return execution


def funded_tenant(
    api: Flask, sessions: sessionmaker[Session], amount: str = "1", name: str = "alice"
) -> Tenant:
    client = api.test_client()
    headers = tenant(client, name)
    account = register_key(client, headers).get_json()
    with sessions() as db:
        credit(db, db.get_one(GasAccount, account["id"]), amount)
        db.commit()
    return Tenant(client, headers, account["id"])


def paid(sessions: sessionmaker[Session], execution_id: int) -> Decimal:
    """What the tenant paid for an execution: what its hold debited less what was refunded
    (all of it for a released hold)."""
    with sessions() as db:
        rows = db.execute(
            select(Transaction.type, Transaction.status, Transaction.amount).where(
                Transaction.type.in_(("function", "refund")),
                Transaction.reference == f"execution:{execution_id}",
            )
        ).all()
    held = sum((a for t, _st, a in rows if t == "function"), Decimal(0))
    return held - sum((a for t, _st, a in rows if t == "refund"), Decimal(0))


def charged(sessions: sessionmaker[Session], execution_id: int) -> Execution | None:
    """The execution once its charge is recorded."""
    with sessions() as db:
        row = db.get_one(Execution, execution_id)
        return row if row.charge_status is not None else None


def charges(sessions: sessionmaker[Session], execution_id: int) -> list[Decimal]:
    with sessions() as db:
        return list(
            db.scalars(
                select(Transaction.amount).where(
                    Transaction.type == "function",
                    Transaction.reference == f"execution:{execution_id}",
                )
            )
        )


def price(duration_ms: int) -> Decimal:
    return BASE + PER_100MS * -(-duration_ms // 100)


def test_the_executor_prestarts_its_sandbox_processes(
    priced: Settings, executor: ServiceApp
) -> None:
    # No execution has run: the processes come from the worker's start.
    assert priced.sandbox_warm == 2
    resources = executor.resources
    assert isinstance(resources, ExecutorResources)
    wait_until(lambda: resources.has_pool, "the sandbox pool")
    pool = resources.pool
    wait_until(lambda: pool.size == priced.sandbox_warm, "two sandbox processes")
    assert pool.restarts == 0


def test_invoke_with_wait_answers_the_finished_execution_and_charges_it(
    api: Flask, executor: Celery, sessions: sessionmaker[Session]
) -> None:
    t = funded_tenant(api, sessions)
    source = """
        async function main(input, ctx) {
            console.log("hello", input.name);
            console.warn({n: 1});
            return {greeting: "hi " + input.name, ctx: {
                executionId: ctx.executionId, functionId: ctx.functionId,
                version: ctx.version, trigger: ctx.trigger, secrets: ctx.secrets}};
        }"""
    fn = t.function(source)
    resp = t.invoke(fn["id"], {"name": "ada"}, wait=20)
    assert resp.status_code == 200, resp.get_json()
    execution = resp.get_json()
    assert execution["status"] == "succeeded", execution
    assert execution["result"] == {
        "greeting": "hi ada",
        "ctx": {
            "executionId": execution["id"],
            "functionId": fn["id"],
            "version": 1,
            "trigger": None,
            "secrets": {},
        },
    }
    assert execution["duration"] is not None
    assert execution["start_time"] <= execution["end_time"]
    assert (execution["charge_status"], Decimal(execution["charge_amount"])) == (
        "charged",
        price(execution["duration"]),
    )
    logs = t.client.get(f"/v1/executions/{execution['id']}/logs", headers=t.headers).get_json()
    assert [(line["level"], line["message"]) for line in logs["items"][::-1]] == [
        ("log", "hello ada"),
        ("warn", '{"n":1}'),
    ]
    shown = t.client.get(f"/v1/functions/{fn['id']}", headers=t.headers).get_json()
    assert shown["execution_count"] == 1
    assert shown["last_execution"] is not None
    # The hold (a run until the 30 s timeout), settled to what ran: the rest refunded.
    assert charges(sessions, execution["id"]) == [price(30_000)]
    assert paid(sessions, execution["id"]) == price(execution["duration"])
    with sessions() as db:
        assert ledger.verify(db) == []


def test_errors_and_timeouts_are_terminal_states(
    api: Flask, executor: Celery, sessions: sessionmaker[Session]
) -> None:
    t = funded_tenant(api, sessions)
    thrown = t.run("function main() { throw new Error('boom ' + 42) }")
    assert thrown["status"] == "failed"
    assert "boom 42" in thrown["error"]
    assert "main" in thrown["error"]  # the JS stack
    looped = t.run("function main() { while (true) {} }", timeout=1)
    assert looped["status"] == "timeout"
    assert 1000 <= looped["duration"] <= 1250 + 250
    assert looped["charge_status"] == "charged"
    # The worker keeps serving after both.
    assert t.run("function main() { return 7 }")["result"] == 7


def test_granted_secrets_reach_the_function_and_never_its_logs(
    api: Flask, executor: Celery, sessions: sessionmaker[Session]
) -> None:
    t = funded_tenant(api, sessions)
    value = "s3cr3t-v4lue-xyz"
    assert (
        t.client.put("/v1/secrets/API_KEY", json={"value": value}, headers=t.headers).status_code
        == 201
    )
    source = """
        function main(input, ctx) {
            console.log("key is " + ctx.secrets.API_KEY);
            if (input.fail) throw new Error("bad key " + ctx.secrets.API_KEY);
            return Object.keys(ctx.secrets);
        }"""
    ok = t.run(source, {"fail": False}, secrets=["API_KEY", "NOT_YET"])
    assert ok["result"] == ["API_KEY"]
    failed = t.run(source, {"fail": True}, secrets=["API_KEY"])
    assert value not in failed["error"]
    assert "bad key ***" in failed["error"]
    ungranted = t.run("function main(i, ctx) { return ctx.secrets }")
    assert ungranted["result"] == {}
    with sessions() as db:
        messages = list(db.scalars(select(ExecutionLog.message)))
    assert messages
    assert all(value not in m for m in messages)
    assert "key is ***" in messages


def test_an_execution_runs_at_most_once(
    api: Flask,
    executor: Celery,
    sessions: sessionmaker[Session],
    priced: Settings,
) -> None:
    t = funded_tenant(api, sessions)
    fn = t.function("function main() { return 1 }")
    execution_id = t.invoke(fn["id"], wait=20).get_json()["id"]
    dispatcher = Dispatcher(executor)
    for _ in range(3):
        dispatcher.send(jobs.RUN_EXECUTION, execution_id=execution_id)

    def counted() -> int:
        with sessions() as db:
            return db.get_one(Function, fn["id"]).execution_count

    # A fresh execution after the re-sent ones proves they were consumed first.
    later = t.invoke(fn["id"], wait=20).get_json()
    assert later["status"] == "succeeded"
    assert counted() == 2
    assert len(charges(sessions, execution_id)) == 1


def test_counters_stay_exact_under_concurrency(
    api: Flask, executor: Celery, sessions: sessionmaker[Session]
) -> None:
    t = funded_tenant(api, sessions)
    fn = t.function("function main(i) { return i }")
    ids = [t.invoke(fn["id"], i).get_json()["execution_id"] for i in range(20)]

    def all_done() -> bool:
        with sessions() as db:
            return (
                db.scalar(
                    select(func.count()).where(
                        Execution.id.in_(ids), Execution.status == "succeeded"
                    )
                )
                == 20
            )

    wait_until(all_done, "20 executions to finish", timeout=60)
    with sessions() as db:
        assert db.get_one(Function, fn["id"]).execution_count == 20
        assert ledger.verify(db) == []


def test_the_reaper_finishes_abandoned_executions_once_and_requeues_lost_ones(
    api: Flask, executor: Celery, sessions: sessionmaker[Session], priced: Settings
) -> None:
    t = funded_tenant(api, sessions)
    fn = t.function("function main() { return 'ran' }", timeout=2)
    now = dt.datetime.now(dt.UTC)
    with sessions() as db:
        abandoned = Execution(
            function_id=fn["id"],
            user_id=db.get_one(Function, fn["id"]).user_id,
            version=1,
            timeout=2,
            status="running",
            start_time=now - dt.timedelta(minutes=10),
        )
        lost = Execution(
            function_id=fn["id"], user_id=abandoned.user_id, version=1, timeout=2, status="queued"
        )
        db.add_all([abandoned, lost])
        db.flush()
        # Each paid for before it was queued, as invoking does.
        for execution in (abandoned, lost):
            held = ledger.hold(
                db, execution.user_id, "function", price(2000), f"execution:{execution.id}"
            )
            execution.hold_transaction_id = held.transaction_id
        db.commit()
        db.execute(
            update(Execution)
            .where(Execution.id == lost.id)
            .values(created_at=now - dt.timedelta(minutes=2))
        )
        db.commit()
    dispatcher = Dispatcher(executor)
    counts = reaper.reap(sessions, priced, dispatcher, now=now + dt.timedelta(seconds=120))
    assert counts["lost"] == 1
    assert counts["requeued"] == 1
    with sessions() as db:
        dead = db.get_one(Execution, abandoned.id)
        assert dead.status == "failed"
        assert dead.error is not None
        assert "worker lost" in dead.error
        assert dead.duration == 2000  # at most its timeout
        # The service lost it, not the tenant: its hold is released, nothing charged.
        assert (dead.charge_status, dead.charge_amount) == ("free", Decimal(0))
        assert dead.hold_transaction_id is not None
        assert db.get_one(Transaction, dead.hold_transaction_id).status == "failed"

    def ran() -> Execution | None:
        with sessions() as db:
            row = db.get_one(Execution, lost.id)
            return row if row.status == "succeeded" else None

    assert wait_until(ran, "the requeued execution to run", timeout=30).result == "ran"
    assert paid(sessions, abandoned.id) == 0
    requeued = wait_until(lambda: charged(sessions, lost.id), "the requeued execution's charge")
    assert paid(sessions, lost.id) == price(requeued.duration or 0) > 0
    # Reaped again (once the requeued one has run: a running execution would look abandoned
    # this far ahead), nothing is finished twice.
    again = reaper.reap(sessions, priced, dispatcher, now=now + dt.timedelta(seconds=121))
    assert again["lost"] == 0
    assert paid(sessions, abandoned.id) == 0
    with sessions() as db:
        assert ledger.verify(db) == []


def test_purge_deletes_executions_and_logs_past_the_retention(
    api: Flask, sessions: sessionmaker[Session], priced: Settings
) -> None:
    t = funded_tenant(api, sessions)
    fn = t.function("function main() { return 1 }")
    old_id = t.invoke(fn["id"]).get_json()["execution_id"]
    new_id = t.invoke(fn["id"]).get_json()["execution_id"]
    with sessions() as db:
        db.add(ExecutionLog(execution_id=old_id, level="log", message="old"))
        db.execute(
            update(Execution)
            .where(Execution.id == old_id)
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=31))
        )
        db.commit()
    assert reaper.purge(sessions, priced) == 1
    with sessions() as db:
        assert db.get(Execution, old_id) is None
        assert db.get(Execution, new_id) is not None
        assert db.scalar(select(func.count()).select_from(ExecutionLog)) == 0


def test_sigkill_of_the_executor_mid_run_ends_in_one_status_and_one_charge(
    api: Flask,
    sessions: sessionmaker[Session],
    priced: Settings,
    server_env: dict[str, str],
    redis_client: Redis,
) -> None:
    t = funded_tenant(api, sessions)
    fn = t.function("function main() { while (true) {} }", timeout=60)
    env = {
        **server_env,
        "NSL_FUNCTION_BASE_FEE": str(BASE),
        "NSL_FUNCTION_FEE_PER_100MS": str(PER_100MS),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "neosl_executor", "--pool", "threads", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        execution_id = t.invoke(fn["id"]).get_json()["execution_id"]

        def running() -> bool:
            with sessions() as db:
                return db.get_one(Execution, execution_id).status == "running"

        wait_until(running, "the executor to start the execution", timeout=60)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    for _ in range(2):
        reaper.reap(sessions, priced, Dispatcher(make_celery(priced, "test-reaper")), now=later)
    with sessions() as db:
        row = db.get_one(Execution, execution_id)
        assert row.status == "failed"
        assert row.error is not None
        assert "worker lost" in row.error
        # Lost with its executor: the service's fault, so its hold is released.
        assert (row.charge_status, row.charge_amount) == ("free", Decimal(0))
    assert charges(sessions, execution_id) == [price(60_000)]
    assert paid(sessions, execution_id) == 0
    with sessions() as db:
        assert ledger.verify(db) == []
