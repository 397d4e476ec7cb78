"""What an idle system does: housekeeping goes unreported in Flower's Tasks view, the beat
and the clocks sleep until something is due, and the logs stay quiet.

Flower's Tasks view is built from task events. Housekeeping (``HOUSEKEEPING``: what the beat
sends every few seconds) sends none, neither from its producer nor from its worker, so that
the view shows the work tenants asked for. Checked on a real broker with an event receiver,
as Flower listens, and with the scheduler (its beat embedded) and the gasbank as processes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from celery import Celery
from celery.beat import ScheduleEntry
from redis import Redis
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session, sessionmaker

from neosl import jobs
from neosl.celery_app import HOUSEKEEPING
from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.models import PriceFeed, PriceRound
from neosl.tasks import PeriodicTask
from neosl_devstack.servers import free_port
from neosl_executor.worker import create_worker_app as executor_app
from neosl_gasbank.worker import create_worker_app as gasbank_app
from neosl_pricefeed import clock as price_clock
from neosl_pricefeed.worker import create_worker_app as pricefeed_app
from neosl_scheduler import clock as cron_clock
from neosl_scheduler.tasks import beat_schedule
from neosl_scheduler.worker import BeatScheduler
from neosl_scheduler.worker import create_worker_app as scheduler_app
from tests.pricefeeds.test_rounds import feed
from tests.processes import running
from tests.scraping import scrape
from tests.waiting import wait_until

Event = dict[str, Any]

WORKER_APPS: tuple[Callable[[Settings], Celery], ...] = (
    executor_app,
    scheduler_app,
    pricefeed_app,
    gasbank_app,
)


def test_housekeeping_is_what_the_beat_sends_and_periodic_tasks_run(settings: Settings) -> None:
    sent_by_the_beat = {entry["task"] for entry in beat_schedule(settings).values()}
    periodic: set[str] = set()
    for factory in WORKER_APPS:
        for name, task in factory(settings).tasks.items():
            if not name.startswith("neosl."):
                continue  # Celery's own (celery.backend_cleanup, …)
            if isinstance(task, PeriodicTask):
                periodic.add(name)
            # Celery's per-task switch: no event of a run of housekeeping, every other's.
            assert task.send_events is (name not in HOUSEKEEPING), name
    assert sent_by_the_beat == periodic == HOUSEKEEPING


@contextmanager
def listening(app: Celery) -> Iterator[list[Event]]:
    """Every event on the broker while inside, as Flower receives them."""
    seen: list[Event] = []
    with app.connection() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": seen.append})
        thread = threading.Thread(
            target=receiver.capture, kwargs={"limit": None, "timeout": None}, daemon=True
        )
        thread.start()
        try:
            yield seen
        finally:
            receiver.should_stop = True
            thread.join(10)


def heard(seen: list[Event], kind: str, task_id: str) -> bool:
    return any(e["type"] == kind and e.get("uuid") == task_id for e in seen)


def mark(producer: Celery, seen: list[Event], queue: str = jobs.EXECUTOR_QUEUE) -> str:
    """A ping's id once its task-sent event was received: every event published before it
    was received too (events reach a receiver in the order they were published)."""
    job = jobs.PING_JOBS[queue]

    def sent() -> str | None:
        task_id = str(producer.send_task(job.name, queue=job.queue).id)
        try:
            wait_until(lambda: heard(seen, "task-sent", task_id), "task-sent", timeout=2)
        except AssertionError:
            return None  # the receiver was not subscribed yet: send another
        return task_id

    found: str = wait_until(sent, "the receiver to hear a task sent", timeout=30)
    return found


def test_housekeeping_is_sent_without_a_task_sent_event(
    producer: Celery, redis_client: Redis
) -> None:
    """Every job sent the way producers send them (``send_task``, as the beat and the
    dispatcher do): only housekeeping goes unreported. No worker runs: the messages wait."""
    with listening(producer) as seen:
        first = mark(producer, seen)
        ids = {}
        for job in jobs.ALL_JOBS:
            payload = dict.fromkeys(job.fields, 1)
            ids[str(producer.send_task(job.name, kwargs=payload, queue=job.queue).id)] = job.name
        Dispatcher(producer).send(jobs.RECONCILE_ACTIONS)
        last = mark(producer, seen)
    assert heard(seen, "task-sent", first)
    assert heard(seen, "task-sent", last)
    reported = {e["name"] for e in seen if e["type"] == "task-sent" and e["uuid"] in ids}
    assert reported == {job.name for job in jobs.ALL_JOBS} - HOUSEKEEPING
    # Sent all the same: every job for the scheduler waits on its queue, follow_chain too.
    on_its_queue = [job for job in jobs.ALL_JOBS if job.queue == jobs.SCHEDULER_QUEUE]
    assert jobs.FOLLOW_CHAIN in on_its_queue
    assert redis_client.llen(jobs.SCHEDULER_QUEUE) == len(on_its_queue)


@pytest.mark.celery
def test_a_beat_and_its_workers_report_only_the_work_asked_for(
    server_env: dict[str, str],
    committed_db: Engine,
    producer: Celery,
    redis_client: Redis,
    tmp_path: Path,
) -> None:
    """The scheduler with its beat and the gasbank, as deployed, ticking every 200 ms: the
    follower and the settlements run (their counts go up), the gasbank's recovery at start
    sends its nudges, and an event receiver hears the workers and the pings, nothing else.
    Neither log has a line per RPC call, nor a traceback."""
    ports = {"scheduler": free_port(), "gasbank": free_port()}

    def env(name: str) -> dict[str, str]:
        return {
            **server_env,
            "NSL_FOLLOWER_INTERVAL_MS": "200",
            "NSL_METRICS_PORT": str(ports[name]),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / name / "metrics"),
        }

    def runs(name: str, job: jobs.Job) -> float:
        try:
            counts = scrape(ports[name])
        except OSError:
            return 0
        labels = (("outcome", "succeeded"), ("task", job.name))
        return counts.get(("neosl_task_runs_total", labels), 0)

    logs = {name: tmp_path / f"{name}.log" for name in ports}
    scheduler = ["neosl_scheduler", "--pool", "solo", "--beat"]
    with (
        listening(producer) as seen,
        running(scheduler, env("scheduler"), logs["scheduler"]),
        running(["neosl_gasbank", "--pool", "solo"], env("gasbank"), logs["gasbank"]),
    ):
        mark(producer, seen)
        for name, job in (
            ("scheduler", jobs.FOLLOW_CHAIN),
            ("gasbank", jobs.RECONCILE_ACTIONS),
            ("gasbank", jobs.RECONCILE_WITHDRAWALS),
        ):

            def ran(name: str = name, job: jobs.Job = job) -> bool:
                return runs(name, job) >= 3

            wait_until(ran, f"{job.name} to run three times", timeout=90)
        pings = []
        for queue in (jobs.SCHEDULER_QUEUE, jobs.GASBANK_QUEUE):
            job = jobs.PING_JOBS[queue]
            pings.append(str(producer.send_task(job.name, queue=job.queue).id))
        for ping in pings:

            def answered(ping: str = ping) -> bool:
                return heard(seen, "task-succeeded", ping)

            wait_until(answered, "a ping to be answered", timeout=30)
    tasks = [e for e in seen if e["type"].startswith("task-")]
    # task-sent and task-received name their task; the other events only its id.
    named = {e["uuid"]: e["name"] for e in tasks if "name" in e}
    assert set(named.values()) <= {job.name for job in jobs.PING_JOBS.values()}
    assert {e["uuid"] for e in tasks} <= set(named)
    for ping in pings:
        assert heard(seen, "task-received", ping)
        assert heard(seen, "task-started", ping)
    workers = {e["hostname"] for e in seen if e["type"] == "worker-heartbeat"}
    assert {h.split("@")[0] for h in workers} >= {jobs.SCHEDULER_QUEUE, jobs.GASBANK_QUEUE}
    for log in logs.values():
        text = log.read_text()
        assert "HTTP Request:" not in text
        assert "Traceback" not in text


def test_the_beat_wakes_once_per_tick() -> None:
    """Celery's own scheduler spins for the last 10 ms before each entry is due (some fifty
    passes per tick sent); ours makes one pass per tick, and is never early."""

    class Counted(BeatScheduler):
        passes = 0
        sent: ClassVar[list[tuple[str, float]]] = []

        def tick(self, *args: Any, **kwargs: Any) -> float:
            Counted.passes += 1
            return float(super().tick(*args, **kwargs))

        def apply_async(self, entry: ScheduleEntry, *args: Any, **kwargs: Any) -> None:
            Counted.sent.append((str(entry.name), time.monotonic()))

    app = Celery("beat-test", broker="memory://")
    app.conf.beat_schedule = {
        "fast": {"task": "t.fast", "schedule": 0.2},
        "slow": {"task": "t.slow", "schedule": 0.5},
    }
    scheduler = Counted(app=app, max_interval=5)
    started = time.monotonic()
    while time.monotonic() - started < 2:
        wait = scheduler.tick()
        if wait > 0:
            time.sleep(wait)
    assert len(Counted.sent) >= 10
    # About one pass per tick sent and one per wake-up before it (Celery's: some fifty).
    assert Counted.passes <= 3 * len(Counted.sent) + 5
    fast = [at for name, at in Counted.sent if name == "fast"]
    assert min(b - a for a, b in itertools.pairwise(fast)) >= 0.2 - 0.001


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` while inside."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def sessions(committed_db: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=committed_db, expire_on_commit=False)


def test_an_idle_cron_clock_pass_is_one_statement(
    settings: Settings, committed_db: Engine, sessions: sessionmaker[Session], producer: Celery
) -> None:
    """No cron slot due: the clock reads when the next one is and sleeps (at most
    NSL_CRON_POLL_MS); it locks no row and starts no transaction that writes."""
    tick = cron_clock.Clock(settings, sessions, Dispatcher(producer))
    tick.next_price_check = time.monotonic() + 3600
    with statements(committed_db) as seen:
        wait = tick.tick()
    assert len(seen) == 1, seen
    assert "FOR UPDATE" not in seen[0]
    assert 0 < wait <= settings.cron_poll_seconds


def test_an_idle_price_clock_pass_is_one_statement_and_abandoned_rounds_still_end(
    settings: Settings, committed_db: Engine, sessions: sessionmaker[Session], producer: Celery
) -> None:
    """No feed due: the pricefeed clock reads when the next slot is and sleeps until then
    (at most POLL_SECONDS). A round left running by a dead worker is failed by the next
    sweep (every SWEEP_SECONDS) even if its feed is never due again (paused)."""
    feed_id = feed(sessions, ["binance"], first=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    tick = price_clock.Clock(settings, sessions, Dispatcher(producer))
    tick.next_resume = tick.next_sweep = tick.next_listings = time.monotonic() + 3600
    with statements(committed_db) as seen:
        wait = tick.tick()
    assert len(seen) == 1, seen
    assert "FOR UPDATE" not in seen[0]
    assert wait == price_clock.POLL_SECONDS
    # A slot sooner than the poll: the clock sleeps until then.
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.4)
    with sessions() as db:
        db.execute(update(PriceFeed).where(PriceFeed.id == feed_id).values(next_round_at=soon))
        db.commit()
    assert 0 <= tick.tick() <= 0.4

    # A round that started long ago and never ended; its feed paused since.
    long_ago = dt.datetime.now(dt.UTC) - price_clock.ABANDONED_AFTER - dt.timedelta(minutes=1)
    with sessions() as db:
        stuck = PriceRound(
            feed_id=feed_id, scheduled_at=long_ago, started_at=long_ago, status="running"
        )
        db.add(stuck)
        db.execute(update(PriceFeed).where(PriceFeed.id == feed_id).values(status="paused"))
        db.commit()
        stuck_id = stuck.id
    tick.tick()
    with sessions() as db:
        assert db.get_one(PriceRound, stuck_id).status == "running"  # no sweep yet
    tick.next_sweep = 0.0
    tick.tick()
    with sessions() as db:
        ended = db.get_one(PriceRound, stuck_id)
    assert (ended.status, ended.reason) == ("failed", price_clock.LOST)
    assert tick.next_sweep > time.monotonic() + price_clock.SWEEP_SECONDS - 5
