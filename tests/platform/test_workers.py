"""Each worker service consumes its own queue on the real broker, with a real worker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.exceptions import TimeoutError as CeleryTimeout

from neosl import broker, jobs
from neosl.celery_app import make_celery
from neosl.config import ConfigError, Settings, load_settings
from neosl.db import make_engine, make_session_factory
from neosl.dispatch import Dispatcher
from neosl_api.app import create_app
from neosl_executor.worker import create_worker_app as executor_app
from neosl_gasbank.worker import create_worker_app as gasbank_app
from neosl_pricefeed import clock
from neosl_pricefeed.worker import create_worker_app as pricefeed_app
from neosl_scheduler.worker import create_worker_app as scheduler_app
from tests.clirun import run_cli
from tests.processes import running
from tests.waiting import wait_until

pytestmark = pytest.mark.celery

FACTORIES: dict[str, Callable[[Settings], Celery]] = {
    jobs.EXECUTOR_QUEUE: executor_app,
    jobs.SCHEDULER_QUEUE: scheduler_app,
    jobs.PRICEFEED_QUEUE: pricefeed_app,
    jobs.GASBANK_QUEUE: gasbank_app,
}


@pytest.mark.parametrize("queue", jobs.ALL_QUEUES)
def test_worker_answers_ping_on_its_own_queue(
    settings: Settings, producer: Celery, queue: str, redis_client: object
) -> None:
    worker_app = FACTORIES[queue](settings)
    job = jobs.PING_JOBS[queue]
    assert job.name in worker_app.tasks
    # The other services' jobs are not registered here: services do not share tasks.
    others = {j.name for q, j in jobs.PING_JOBS.items() if q != queue}
    assert not others & set(worker_app.tasks)
    with start_worker(worker_app, pool="solo", perform_ping_check=False, queues=[queue]):
        reply = producer.send_task(job.name, queue=job.queue).get(timeout=20)
    assert reply["queue"] == queue


def test_message_on_another_queue_is_not_taken(
    settings: Settings, producer: Celery, redis_client: object
) -> None:
    worker_app = executor_app(settings)
    ledger_job = jobs.PING_JOBS[jobs.GASBANK_QUEUE]
    with start_worker(
        worker_app, pool="solo", perform_ping_check=False, queues=[jobs.EXECUTOR_QUEUE]
    ):
        result = producer.send_task(ledger_job.name, queue=ledger_job.queue)
        with pytest.raises(CeleryTimeout):
            result.get(timeout=2)
    # The message still waits on the ledger queue for its own consumer.
    with start_worker(
        gasbank_app(settings), pool="solo", perform_ping_check=False, queues=[jobs.GASBANK_QUEUE]
    ):
        assert result.get(timeout=20)["queue"] == jobs.GASBANK_QUEUE


def test_cli_workers_ping(
    settings: Settings, server_env: dict[str, str], redis_client: object
) -> None:
    with start_worker(
        pricefeed_app(settings),
        pool="solo",
        perform_ping_check=False,
        queues=[jobs.PRICEFEED_QUEUE],
    ):
        ok = run_cli(server_env, "workers", "ping", "pricefeed", "--timeout", "20")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "pricefeed: ok" in ok.stdout
    missing = run_cli(server_env, "workers", "ping", "gasbank", "--timeout", "1")
    assert missing.returncode == 1
    assert "gasbank: no answer" in missing.stdout


def test_workers_send_the_task_events_flower_shows(
    settings: Settings, server_env: dict[str, str], producer: Celery, tmp_path: Path
) -> None:
    """Flower's Tasks view is built from task events: the producer reports a task sent, the
    worker (a real process, as deployed) its receipt, start and success, by readable name."""
    seen: list[dict[str, Any]] = []
    job = jobs.PING_JOBS[jobs.PRICEFEED_QUEUE]
    log = tmp_path / "worker.log"
    with (
        running(["neosl_pricefeed", "--concurrency", "1"], server_env, log),
        producer.connection() as connection,
    ):
        receiver = producer.events.Receiver(connection, handlers={"*": seen.append})
        listening = threading.Thread(
            target=receiver.capture, kwargs={"limit": None, "timeout": None}, daemon=True
        )
        listening.start()

        def traced() -> set[str] | None:
            # Sent again until the receiver, subscribing meanwhile, sees a whole task.
            task_id = producer.send_task(job.name, queue=job.queue).id
            wait_until(
                lambda: (
                    any(e.get("uuid") == task_id and e["type"] == "task-succeeded" for e in seen)
                    or None
                ),
                "the task to succeed",
                timeout=40,
            )
            kinds = {e["type"] for e in seen if e.get("uuid") == task_id}
            return kinds if "task-sent" in kinds else None

        kinds = wait_until(traced, "a task traced from sent to succeeded", timeout=90)
        receiver.should_stop = True
        listening.join(10)
    assert kinds >= {"task-sent", "task-received", "task-started", "task-succeeded"}
    names = {e["name"] for e in seen if e["type"] == "task-received"}
    assert names == {job.name}


def test_task_events_can_be_switched_off(server_env: dict[str, str]) -> None:
    base = {k: v for k, v in server_env.items() if k != "NSL_CELERY_EVENTS"}
    off = make_celery(load_settings({**base, "NSL_CELERY_EVENTS": "off"}), "quiet")
    on = make_celery(load_settings(base), "loud")
    assert (off.conf.worker_send_task_events, off.conf.task_send_sent_event) == (False, False)
    assert (on.conf.worker_send_task_events, on.conf.task_send_sent_event) == (True, True)


def test_only_the_processes_that_use_the_keys_need_them(server_env: dict[str, str]) -> None:
    """The token key is the API's, the secrets' master keys the API's, the executor's and
    the pricefeed worker's (rounds read tenants' secrets); every other process starts
    without them (least privilege: a process holds no key it does not use)."""
    bare = load_settings(
        {k: v for k, v in server_env.items() if k not in ("NSL_SECRET_KEY", "NSL_SECRETS_KEY")}
    )
    for queue in (jobs.SCHEDULER_QUEUE, jobs.GASBANK_QUEUE):
        assert FACTORIES[queue](bare).main
    for needs_secrets in (executor_app, pricefeed_app):
        with pytest.raises(ConfigError, match="NSL_SECRETS_KEY is not set"):
            needs_secrets(bare)
    with pytest.raises(ConfigError, match="NSL_SECRET_KEY is not set"):
        create_app(bare)
    no_token_key = load_settings({k: v for k, v in server_env.items() if k != "NSL_SECRET_KEY"})
    assert executor_app(no_token_key).main
    # The price feeds' clock only schedules: it reads no secret.
    assert clock.Clock(
        bare, make_session_factory(make_engine(bare)), Dispatcher(make_celery(bare, "x"))
    )


def test_a_broker_channel_keeps_one_client_per_pool(producer: Celery) -> None:
    """kombu built a Redis client for every ack and event; our channel keeps one per pool."""
    with producer.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, broker.Channel)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert first.connection_pool is channel.pool
        # A replaced pool (after a fork, a reconnection) gets a client of its own.
        channel._disconnect_pools()  # type: ignore[attr-defined]  # what kombu does after a fork
        with channel.conn_or_acquire() as third:
            assert third is not first
            assert third.connection_pool is channel.pool
            assert third.ping()
        # A client given is used as it is.
        with channel.conn_or_acquire(first) as given:
            assert given is first
