"""What operators watch: each worker's /metrics and /healthz, the scrape-time figures, the
API's request metrics and request ids, and ids that follow a job into the worker's logs."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, Counter
from redis import Redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from neosl import exporter, jobs, logs
from neosl.celery_app import make_celery
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.gas.metrics import BankCollector
from neosl.gas.money import from_units
from neosl.logs import REQUEST_ID_HEADER
from neosl.metrics import QueueCollector
from neosl.models import GasAccount, Trigger, TriggerEvent
from neosl.neo.rpc import NeoRpc
from neosl.tasks import ServiceTask
from neosl_devstack.servers import free_port
from neosl_gasbank.hot_wallet import HotWallet
from neosl_gasbank.worker import collectors as ledger_collectors
from neosl_scheduler.metrics import TriggerCollector
from tests.factories import credit, make_account, make_function, make_user
from tests.functions.test_api import created
from tests.gas.test_api import tenant
from tests.processes import running
from tests.scraping import api_figures, samples
from tests.waiting import wait_until


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def registry_of(*collectors: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


def test_the_endpoint_serves_metrics_and_health_only() -> None:
    registry = CollectorRegistry()
    Counter("neosl_example", "An example", registry=registry).inc(3)
    served = exporter.serve("127.0.0.1", 0, registry)
    try:
        base = f"http://127.0.0.1:{served.port}"
        status, body = get(f"{base}/metrics")
        assert status == 200
        assert samples(body)[("neosl_example_total", ())] == 3
        assert get(f"{base}/healthz") == (200, "ok\n")
        assert get(f"{base}/")[0] == 404
        assert get(f"{base}/metrics/../secrets")[0] == 404
    finally:
        served.close()


def test_no_endpoint_unless_a_port_is_set(settings: Settings) -> None:
    assert settings.metrics_port == 0
    assert exporter.start(settings, []) is None


@pytest.mark.celery
def test_a_prefork_worker_exports_the_counts_of_its_children(
    server_env: dict[str, str], producer: Celery, redis_client: Redis, tmp_path: Path
) -> None:
    """Two pool processes run the pings; the main process's endpoint adds up their counts
    (PROMETHEUS_MULTIPROC_DIR), beside its queue's length. Its log lines are JSON."""
    port = free_port()
    env = {
        **server_env,
        "NSL_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "NSL_LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    job = jobs.PING_JOBS[jobs.PRICEFEED_QUEUE]
    with running(["neosl_pricefeed", "--concurrency", "2"], env, log) as proc:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool | None:
            assert proc.poll() is None, log.read_text()
            try:
                return get(f"{base}/healthz")[0] == 200 or None
            except OSError:
                return None

        wait_until(healthy, "the worker's endpoint", timeout=60)
        pids = set()
        for _ in range(8):
            pids.add(producer.send_task(job.name, queue=job.queue).get(timeout=30)["pid"])
        key = (
            "neosl_task_runs_total",
            (("outcome", "succeeded"), ("task", job.name)),
        )
        counted = wait_until(
            lambda: samples(get(f"{base}/metrics")[1]).get(key) == 8 or None,
            "eight pings counted",
            timeout=30,
        )
        assert counted
        scraped = samples(get(f"{base}/metrics")[1])
        assert scraped[("neosl_queue_length", (("queue", "pricefeed"),))] == 0
        assert ("neosl_task_duration_seconds_count", key[1]) in scraped
    assert proc.pid not in pids  # the children ran them
    files = list((tmp_path / "prometheus").glob("*.db"))
    assert files, "the children wrote their counts"
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    started = [json.loads(line) for line in lines if "metrics on" in line]
    assert started
    assert started[0]["level"] == "INFO"


def test_queue_and_trigger_figures(
    db: Session, session_factory: sessionmaker[Session], redis_client: Redis
) -> None:
    redis_client.lpush("executor", "a", "b")
    queues = registry_of(QueueCollector(redis_client, ("executor", "gasbank")))
    assert queues.get_sample_value("neosl_queue_length", {"queue": "executor"}) == 2
    assert queues.get_sample_value("neosl_queue_length", {"queue": "gasbank"}) == 0
    user = make_user(db)
    fn = make_function(db, user)
    for kind, status in (("cron", "active"), ("cron", "paused"), ("webhook", "active")):
        db.add(
            Trigger(
                user_id=user.id,
                function_id=fn.id,
                name=f"{kind}-{status}",
                trigger_type=kind,
                trigger_config={"schedule": "* * * * *"} if kind == "cron" else {},
                status=status,
            )
        )
    db.commit()
    triggers = registry_of(TriggerCollector(session_factory))
    for kind, status, n in (
        ("cron", "active", 1),
        ("cron", "paused", 1),
        ("webhook", "active", 1),
        ("price", "active", 0),
    ):
        assert triggers.get_sample_value("neosl_triggers", {"type": kind, "status": status}) == n

    # Its recent events, by why they did not fire.
    cron = db.scalars(select(Trigger).where(Trigger.name == "cron-active")).one()
    for key, status, reason in (
        ("a", "skipped", "insufficient_funds: the default gas account cannot cover …"),
        ("b", "skipped", "insufficient_funds: the default gas account cannot cover …"),
        ("c", "skipped", "the function is paused"),
        ("d", "skipped", "missed: no scheduler ran at this slot"),
        ("e", "fired", None),
    ):
        db.add(TriggerEvent(trigger_id=cron.id, status=status, cause_key=key, reason=reason))
    db.commit()
    recent = registry_of(TriggerCollector(session_factory))
    for status, reason, n in (
        ("skipped", "insufficient_funds", 2),
        ("skipped", "function_paused", 1),
        ("skipped", "missed", 1),
        ("fired", "none", 1),
    ):
        labels = {"type": "cron", "status": status, "reason": reason}
        assert recent.get_sample_value("neosl_trigger_events_recent", labels) == n


def test_the_books_show_a_balance_that_its_transactions_do_not_explain(
    db: Session, session_factory: sessionmaker[Session]
) -> None:
    user = make_user(db)
    account = make_account(db, user)
    credit(db, account, "5")
    db.commit()
    books = registry_of(BankCollector(session_factory))
    assert books.get_sample_value("neosl_ledger_mismatched_accounts") == 0
    assert books.get_sample_value("neosl_ledger_balance_gas") == 5
    assert (
        books.get_sample_value(
            "neosl_ledger_transactions_gas", {"type": "deposit", "status": "confirmed"}
        )
        == 5
    )
    # Someone edits a balance by hand: a fresh collector (the check runs every few minutes
    # per process) finds the account.
    db.get_one(GasAccount, account.id).balance = Decimal(7)
    db.commit()
    assert (
        registry_of(BankCollector(session_factory)).get_sample_value(
            "neosl_ledger_mismatched_accounts"
        )
        == 1
    )
    # The API's summary leaves the books to the gasbank.
    summary = registry_of(BankCollector(session_factory, books=False))
    assert summary.get_sample_value("neosl_ledger_mismatched_accounts") is None
    assert summary.get_sample_value("neosl_ledger_balance_gas") == 7


@pytest.mark.neo
def test_the_gasbank_exports_the_hot_wallet_balance(
    settings: Settings, hot: HotWallet, committed_db: Engine, redis_client: Redis
) -> None:
    registry = registry_of(*ledger_collectors(settings, exporter.Sources(settings)))
    with NeoRpc(settings.neo_rpc_urls) as rpc:
        expected = float(from_units(rpc.gas_balance(hot.address)))
    assert registry.get_sample_value("neosl_hot_wallet_balance_gas") == expected
    assert registry.get_sample_value("neosl_queue_length", {"queue": "gasbank"}) == 0
    assert registry.get_sample_value("neosl_withdrawals_pending") == 0


def test_the_api_counts_requests_by_route_template(client: FlaskClient) -> None:
    for _ in range(2):
        assert client.get("/healthz").status_code == 200
    assert client.get("/v1/functions/12345").status_code == 401
    assert client.get("/no/such/thing").status_code == 404
    scraped = samples(api_figures(client.application))

    def count(method: str, route: str, status: str) -> float | None:
        labels = (("method", method), ("route", route), ("status", status))
        return scraped.get(("neosl_http_requests_total", labels))

    assert count("GET", "/healthz", "200") == 2
    # The template, never the id as sent.
    assert count("GET", "/v1/functions/<int:function_id>", "401") == 1
    assert count("GET", "unmatched", "404") == 1
    assert not any("12345" in str(labels) for _, labels in scraped)
    duration = (
        "neosl_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/healthz")),
    )
    assert scraped[duration] == 2


def test_the_api_answers_and_logs_a_request_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="neosl_api.access"):
        kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        replaced = client.get("/healthz", headers={"X-Request-ID": "not ok\u00e9"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    new_id = replaced.headers["X-Request-ID"]
    assert new_id != "not ok\u00e9"
    assert len(new_id) == 32
    access = [r for r in caplog.records if r.name == "neosl_api.access"]
    assert [getattr(r, "request_id", None) for r in access] == ["abc-123", new_id]
    assert access[0].getMessage().startswith("GET /healthz 200")
    # Nothing is left bound once the request is over.
    assert logs.current() == {}


def test_the_jobs_a_request_queues_carry_its_id(client: FlaskClient, redis_client: Redis) -> None:
    headers = {**tenant(client), "X-Request-ID": "req-77"}
    fn = created(client, headers)
    invoked = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=headers)
    assert invoked.status_code == 202, invoked.get_json()
    (raw,) = redis_client.lrange(jobs.EXECUTOR_QUEUE, 0, -1)
    message = json.loads(raw)
    assert message["headers"][REQUEST_ID_HEADER] == "req-77"
    assert message["headers"]["task"] == jobs.RUN_EXECUTION.name


LOGGED = jobs.Job("neosl.test.logged", "observability-test", ("execution_id",))


@pytest.mark.celery
def test_a_worker_logs_under_the_request_task_and_execution_ids(
    settings: Settings, producer: Celery, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_celery(settings, "observability_test", queue=LOGGED.queue)

    @app.task(name=LOGGED.name, base=ServiceTask, bind=True, shared=False)
    def logged(self: ServiceTask, execution_id: int) -> str:
        logging.getLogger("neosl.test.worker").info("working on it")
        return str(self.request.id)

    with (
        caplog.at_level(logging.INFO, logger="neosl.test.worker"),
        start_worker(app, pool="solo", perform_ping_check=False, queues=[LOGGED.queue]),
    ):
        with logs.context(request_id="req-5"):
            task_id = Dispatcher(producer).send(LOGGED, execution_id=42)
        wait_until(
            lambda: any(r.getMessage() == "working on it" for r in caplog.records) or None,
            "the task to log",
            timeout=30,
        )
    (record,) = [r for r in caplog.records if r.getMessage() == "working on it"]
    assert getattr(record, "request_id", None) == "req-5"
    assert getattr(record, "execution_id", None) == 42
    assert getattr(record, "task_id", None) == task_id
