"""Jobs leave only after their transaction commits; every task run is counted by outcome.

Real PostgreSQL (committed transactions), the real Redis broker (messages read back from the
list Redis keeps per queue) and real Celery workers.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.celery_app import make_celery, make_worker_app
from neosl.config import Settings
from neosl.dispatch import Dispatcher, task_message
from neosl.gas import ledger
from neosl.models import GasAccount, Transaction
from neosl.neo.rpc import RpcUnavailable
from neosl.tasks import ServiceTask, task_metrics
from neosl_devstack.servers import free_port
from neosl_gasbank.tasks import ChainTask
from neosl_gasbank.worker import create_worker_app as gasbank_worker_app
from neosl_scheduler.tasks import beat_schedule
from tests.factories import make_user, new_address
from tests.waiting import wait_until

pytestmark = pytest.mark.celery

SEND = jobs.SEND_WITHDRAWAL
# Where kombu's Redis transport keeps messages a worker has taken but not acknowledged yet,
# including the ones it holds back for a countdown (ETA).
UNACKED = "unacked"


def waiting(redis: Redis, queue: str) -> list[tuple[str, dict[str, Any]]]:
    """(task name, kwargs) of every message on ``queue``, oldest first."""
    found = []
    # kombu pushes on the left and workers pop on the right.
    for raw in reversed(redis.lrange(queue, 0, -1)):
        message = json.loads(raw)
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], kwargs))
    return found


@pytest.fixture
def session(committed_db: Engine) -> Iterator[Session]:
    # On the engine itself, not the per-test rollback connection: commit is a real COMMIT.
    with Session(committed_db) as session:
        yield session


# -- the dispatcher ---------------------------------------------------------------------


def test_job_is_sent_when_the_transaction_commits_and_not_before(
    session: Session, producer: Celery, redis_client: Redis
) -> None:
    dispatcher = Dispatcher(producer)
    user = make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=user.id)
    session.flush()
    assert waiting(redis_client, SEND.queue) == []
    session.commit()
    assert waiting(redis_client, SEND.queue) == [(SEND.name, {"transaction_id": user.id})]
    # The job left with its transaction: a later commit on the session sends nothing again.
    make_user(session)
    session.commit()
    assert len(waiting(redis_client, SEND.queue)) == 1
    assert dispatcher.send_failures == 0


def fail_in_transaction(session: Session, dispatcher: Dispatcher, transaction_id: int) -> None:
    with session.begin():
        make_user(session)
        dispatcher.send_after_commit(session, SEND, transaction_id=transaction_id)
        raise RuntimeError("request failed")


def test_rollback_drops_the_job(session: Session, producer: Celery, redis_client: Redis) -> None:
    dispatcher = Dispatcher(producer)
    make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=1)
    session.rollback()
    # A transaction block left by an exception rolls back too.
    with pytest.raises(RuntimeError, match="request failed"):
        fail_in_transaction(session, dispatcher, transaction_id=2)
    # The next transaction on the same session commits only its own job.
    make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=3)
    session.commit()
    assert waiting(redis_client, SEND.queue) == [(SEND.name, {"transaction_id": 3})]


def test_rolled_back_savepoint_drops_only_its_own_jobs(
    session: Session, producer: Celery, redis_client: Redis
) -> None:
    dispatcher = Dispatcher(producer)
    make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=1)
    savepoint = session.begin_nested()
    make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=2)
    dispatcher.send_after_commit(session, jobs.APPLY_DEPOSITS)
    savepoint.rollback()
    dispatcher.send_after_commit(session, SEND, transaction_id=3)
    assert waiting(redis_client, SEND.queue) == []
    session.commit()
    assert waiting(redis_client, SEND.queue) == [
        (SEND.name, {"transaction_id": 1}),
        (SEND.name, {"transaction_id": 3}),
    ]


def test_same_job_twice_in_one_transaction_is_sent_once(
    session: Session, producer: Celery, redis_client: Redis
) -> None:
    dispatcher = Dispatcher(producer)
    make_user(session)
    for _ in range(3):
        dispatcher.send_after_commit(session, jobs.APPLY_DEPOSITS)
        dispatcher.send_after_commit(session, SEND, transaction_id=7)
    dispatcher.send_after_commit(session, SEND, transaction_id=8)
    session.commit()
    assert waiting(redis_client, SEND.queue) == [
        (jobs.APPLY_DEPOSITS.name, {}),
        (SEND.name, {"transaction_id": 7}),
        (SEND.name, {"transaction_id": 8}),
    ]
    # Another transaction may send the same job again.
    make_user(session)
    dispatcher.send_after_commit(session, jobs.APPLY_DEPOSITS)
    session.commit()
    assert len(waiting(redis_client, SEND.queue)) == 4


def test_released_savepoint_does_not_send_before_the_commit(
    session: Session, producer: Celery, redis_client: Redis
) -> None:
    dispatcher = Dispatcher(producer)
    make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=1)
    with session.begin_nested():
        dispatcher.send_after_commit(session, SEND, transaction_id=2)
    # Releasing a savepoint commits nothing (SQLAlchemy still fires after_commit for it).
    assert waiting(redis_client, SEND.queue) == []
    session.rollback()
    assert waiting(redis_client, SEND.queue) == []
    # Released, then committed: the jobs of both leave with the commit.
    make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=3)
    with session.begin_nested():
        dispatcher.send_after_commit(session, SEND, transaction_id=4)
    assert waiting(redis_client, SEND.queue) == []
    session.commit()
    assert waiting(redis_client, SEND.queue) == [
        (SEND.name, {"transaction_id": 3}),
        (SEND.name, {"transaction_id": 4}),
    ]


def test_closing_the_session_drops_the_job(
    session: Session, producer: Celery, redis_client: Redis
) -> None:
    dispatcher = Dispatcher(producer)
    make_user(session)
    dispatcher.send_after_commit(session, SEND, transaction_id=1)
    # Closing ends the transaction without a commit; the session may then be used again.
    session.close()
    make_user(session)
    session.commit()
    assert waiting(redis_client, SEND.queue) == []


def test_many_jobs_leave_together_after_the_commit(
    session: Session, producer: Celery, redis_client: Redis
) -> None:
    dispatcher = Dispatcher(producer)
    make_user(session)
    payloads = [{"execution_id": i} for i in range(1, 2501)]  # more than one pipeline flush
    dispatcher.send_many_after_commit(session, jobs.RUN_EXECUTION, payloads)
    dispatcher.send_after_commit(session, SEND, transaction_id=7)
    session.flush()
    assert waiting(redis_client, jobs.RUN_EXECUTION.queue) == []
    session.commit()
    sent = waiting(redis_client, jobs.RUN_EXECUTION.queue)
    assert sent == [(jobs.RUN_EXECUTION.name, p) for p in payloads]
    assert waiting(redis_client, SEND.queue) == [(SEND.name, {"transaction_id": 7})]
    assert dispatcher.send_failures == 0


def test_an_announcement_leaves_with_the_jobs_of_its_commit_and_not_on_rollback(
    session: Session, producer: Celery, redis_client: Redis
) -> None:
    dispatcher = Dispatcher(producer)
    key = f"test:announce:{secrets.token_hex(4)}"
    make_user(session)
    dispatcher.push_after_commit(session, key, "1", 60)
    session.rollback()
    assert redis_client.llen(key) == 0
    make_user(session)
    dispatcher.send_after_commit(session, jobs.RUN_EXECUTION, execution_id=9)
    dispatcher.push_after_commit(session, key, "1", 60)
    session.flush()
    assert redis_client.llen(key) == 0
    session.commit()
    assert redis_client.lrange(key, 0, -1) == [b"1"]
    assert 0 < redis_client.ttl(key) <= 60
    assert waiting(redis_client, jobs.RUN_EXECUTION.queue) == [
        (jobs.RUN_EXECUTION.name, {"execution_id": 9})
    ]


def test_a_job_sent_now_is_a_celery_message_on_its_queue(
    producer: Celery, redis_client: Redis
) -> None:
    task_id = Dispatcher(producer).send(SEND, transaction_id=4)
    (raw,) = redis_client.lrange(SEND.queue, 0, -1)
    assert json.loads(raw)["headers"]["id"] == task_id
    assert waiting(redis_client, SEND.queue) == [(SEND.name, {"transaction_id": 4})]


def test_batched_messages_are_what_celery_writes_and_workers_run(
    session: Session, settings: Settings, producer: Celery, redis_client: Redis
) -> None:
    # What Celery itself writes, for the same job.
    producer.send_task(jobs.RUN_EXECUTION.name, kwargs={"execution_id": 1}, queue="celery-own")
    (raw,) = redis_client.lrange("celery-own", 0, -1)
    celery_own = json.loads(raw)
    ours = json.loads(task_message(producer, jobs.RUN_EXECUTION.name, {"execution_id": 1}, "q"))

    def shape(message: dict[str, Any]) -> Any:
        return {
            "keys": sorted(message),
            "headers": sorted(message["headers"]),
            "properties": sorted(message["properties"]),
            "delivery_info": sorted(message["properties"]["delivery_info"]),
            "body": json.loads(base64.b64decode(message["body"])),
            "fixed": [message[k] for k in ("content-encoding", "content-type")],
            "task": message["headers"]["task"],
        }

    assert shape(ours) == shape(celery_own)
    assert ours["properties"]["delivery_info"]["routing_key"] == "q"
    # A real worker runs a batch sent this way, every job once.
    app = make_worker_app(settings, METRICS_QUEUE)
    seen: list[int] = []

    @app.task(name="test.batched", shared=False)
    def batched(n: int) -> None:
        seen.append(n)

    job = jobs.Job("test.batched", METRICS_QUEUE, ("n",))
    make_user(session)
    Dispatcher(producer).send_many_after_commit(session, job, [{"n": i} for i in range(40)])
    session.commit()
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[METRICS_QUEUE]):
        wait_until(lambda: len(seen) >= 40, "the worker to run the batch")
    assert sorted(seen) == list(range(40))


def test_a_batch_the_broker_refuses_counts_every_job_as_not_sent(
    session: Session, settings: Settings
) -> None:
    nowhere = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    down = make_celery(nowhere, "down")
    down.conf.broker_transport_options = {"max_retries": 0}
    dispatcher = Dispatcher(down)
    make_user(session)
    dispatcher.send_many_after_commit(
        session, jobs.RUN_EXECUTION, [{"execution_id": i} for i in range(1, 6)]
    )
    session.commit()  # the rows commit; the jobs are counted as not sent
    assert dispatcher.send_failures == 5
    down.close()


# -- task metrics -----------------------------------------------------------------------

# Any queue of ours will do (a worker app answers the ping of its queue); nothing else
# consumes it during this test.
METRICS_QUEUE = jobs.EXECUTOR_QUEUE


def metrics_app(settings: Settings) -> tuple[Celery, dict[str, int]]:
    """A worker app with four small tasks, and how often each was called."""
    app = make_worker_app(settings, METRICS_QUEUE)
    calls = {"ok": 0, "boom": 0, "retry_once": 0, "rpc_once": 0}

    @app.task(name="test.ok", base=ServiceTask, bind=True, shared=False)
    def ok(self: ServiceTask) -> str:
        calls["ok"] += 1
        return "done"

    @app.task(name="test.boom", base=ServiceTask, bind=True, shared=False)
    def boom(self: ServiceTask) -> None:
        calls["boom"] += 1
        raise ValueError("boom")

    @app.task(name="test.retry_once", base=ServiceTask, bind=True, shared=False)
    def retry_once(self: ServiceTask) -> int:
        calls["retry_once"] += 1
        if calls["retry_once"] == 1:
            raise self.retry(countdown=0)
        return calls["retry_once"]

    # ChainTask retries an RPC outage by itself (with backoff: up to 2 s for the first).
    @app.task(name="test.rpc_once", base=ChainTask, bind=True, shared=False)
    def rpc_once(self: ChainTask) -> int:
        calls["rpc_once"] += 1
        if calls["rpc_once"] == 1:
            raise RpcUnavailable("the node is down")
        return calls["rpc_once"]

    return app, calls


def test_each_run_is_counted_and_timed_by_outcome(settings: Settings, redis_client: Redis) -> None:
    app, calls = metrics_app(settings)
    metrics = task_metrics(app)
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[METRICS_QUEUE]):
        results = {
            name: app.send_task(f"test.{name}", queue=METRICS_QUEUE)
            for name in ("ok", "boom", "retry_once", "rpc_once")
        }
        assert results["ok"].get(timeout=20) == "done"
        with pytest.raises(ValueError, match="boom"):
            results["boom"].get(timeout=20)
        assert results["retry_once"].get(timeout=20) == 2
        assert results["rpc_once"].get(timeout=20) == 2
    assert calls == {"ok": 1, "boom": 1, "retry_once": 2, "rpc_once": 2}
    expected = {
        "test.ok": {"succeeded": 1, "retried": 0, "failed": 0},
        "test.boom": {"succeeded": 0, "retried": 0, "failed": 1},
        "test.retry_once": {"succeeded": 1, "retried": 1, "failed": 0},
        "test.rpc_once": {"succeeded": 1, "retried": 1, "failed": 0},
    }
    counted = {
        task: {outcome: metrics.count(task, outcome) for outcome in outcomes}
        for task, outcomes in expected.items()
    }
    assert counted == expected
    for task, outcomes in expected.items():
        for outcome, runs in outcomes.items():
            timed = metrics.registry.get_sample_value(
                "neosl_task_duration_seconds_count", {"task": task, "outcome": outcome}
            )
            assert int(timed or 0) == runs, (task, outcome)


# -- periodic tasks during an outage ------------------------------------------------------


def pending_withdrawal(sessions: sessionmaker[Session]) -> int:
    """A proven account with 5 GAS deposited and a 2 GAS withdrawal waiting to be sent."""
    with sessions() as db:
        user = make_user(db)
        account = GasAccount(
            user_id=user.id,
            address=new_address(),
            is_default=True,
            verified_at=dt.datetime.now(dt.UTC),
        )
        db.add(account)
        db.flush()
        credited = ledger.credit_deposit(
            db,
            tx_hash="0x" + secrets.token_hex(32),
            notification_index=0,
            block_index=1,
            from_address=account.address,
            amount=Decimal(5),
        )
        assert credited == ledger.DepositOutcome.CREDITED
        tx = ledger.debit_withdrawal(db, account, Decimal(2))
        db.commit()
        return tx.id


def test_periodic_task_fails_without_piling_up_retries(
    settings: Settings, committed_db: Engine, redis_client: Redis
) -> None:
    sessions = sessionmaker(bind=committed_db, expire_on_commit=False)
    transaction_id = pending_withdrawal(sessions)
    dead = dataclasses.replace(settings, neo_rpc_urls=(f"http://127.0.0.1:{free_port()}",))
    app = gasbank_worker_app(dead)
    metrics = task_metrics(app)
    reconcile, send = jobs.RECONCILE_WITHDRAWALS, jobs.SEND_WITHDRAWAL
    queue = jobs.GASBANK_QUEUE

    def messages() -> int:
        return int(redis_client.llen(queue)) + int(redis_client.hlen(UNACKED))

    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
        result = app.send_task(reconcile.name, queue=queue)
        # It did ask the (dead) node: there was a pending withdrawal to settle.
        failure = result.get(timeout=30, propagate=False)
        assert isinstance(failure, RpcUnavailable), failure
        assert metrics.count(reconcile.name, "failed") == 1
        # A ping sent after it is answered only once everything before it was taken, so a
        # retry scheduled by the failed run would now be held by the worker, unacknowledged.
        ping = jobs.PING_JOBS[queue]
        assert app.send_task(ping.name, queue=queue).get(timeout=20)["queue"] == queue
        wait_until(lambda: messages() == 0, "the broker to hold no message")
        assert metrics.count(reconcile.name, "retried") == 0
        assert metrics.count(reconcile.name, "failed") == 1
        assert metrics.count(reconcile.name, "succeeded") == 0

        # The same outage for a one-off chain task: it is retried, and its retry waits.
        app.send_task(send.name, kwargs={"transaction_id": transaction_id}, queue=queue)
        wait_until(lambda: metrics.count(send.name, "retried") >= 1, "send to be retried")
        assert messages() >= 1
        assert metrics.count(send.name, "failed") == 0
    with sessions() as db:
        assert db.get_one(Transaction, transaction_id).status == "pending"
        assert ledger.verify(db) == []


def test_every_beat_tick_expires(settings: Settings) -> None:
    schedule = beat_schedule(settings)
    assert schedule
    for name, entry in schedule.items():
        expires = entry["options"].get("expires")
        assert expires is not None, name
        # Expired by the time the next tick is due (a tick more often than 1 s lives 1 s).
        assert 0 < expires <= max(float(entry["schedule"]), 1.0), name
