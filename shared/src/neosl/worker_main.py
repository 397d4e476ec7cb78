"""Shared start-up of a service process: config errors end it with one clear line."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from celery.signals import setup_logging
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from neosl import exporter, logs
from neosl.celery_app import ServiceApp, make_celery
from neosl.config import ConfigError, Settings, load_settings
from neosl.db import make_engine, make_session_factory
from neosl.dispatch import Dispatcher
from neosl.exporter import CollectorsFactory
from neosl.metrics import prepare_multiprocess_dir


def start_process() -> Settings | None:
    """The settings of a service process, logging set up; None (after one clear line on
    stderr) when the configuration is wrong."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return None
    logs.configure(settings)
    # httpx logs every request at INFO: a line per RPC call of each pass of the chain
    # follower and the settlements, and per source of each price round, which at idle
    # were nearly all of the services' log. The services log what they did instead.
    logging.getLogger("httpx").setLevel(
        logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    )
    prepare_multiprocess_dir()
    return settings


def run_worker(
    factory: Callable[..., ServiceApp],
    queue: str,
    argv: Sequence[str],
    collectors: CollectorsFactory | None = None,
) -> int:
    """Run the Celery worker of ``queue``; with ``NSL_METRICS_PORT`` set, export its task
    counts and what ``collectors`` read."""
    settings = start_process()
    if settings is None:
        return 2
    try:
        app = factory(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # A service's own counts beyond its tasks' are in its app's ``registries``.
    own = [app.task_metrics.registry, *app.registries]
    exporter.start(settings, own, collectors)
    # Logging is ours (neosl.logs, set up above): with a receiver of this signal Celery
    # leaves the root logger's handlers and level alone (else it would set it to its own
    # --loglevel, WARNING, and hide every INFO line of the tasks).
    setup_logging.connect(_logging_is_configured, weak=False)
    try:
        # Without gossip: no worker of ours listens to the others' heartbeats (Flower does,
        # through its own receiver), so that each worker does not handle every other
        # worker's heartbeat every two seconds for nothing.
        app.worker_main(["worker", "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", *argv])
    finally:
        app.close_resources()
    return 0


def _logging_is_configured(**_kwargs: object) -> None:
    """Celery's ``setup_logging`` signal: nothing to do, ``start_process`` did it."""


class Loop(Protocol):
    stop: threading.Event
    # What the loop counts itself, exported with NSL_METRICS_PORT.
    registries: list[CollectorRegistry]

    def run(self) -> None: ...


def run_loop(
    name: str,
    build: Callable[[Settings, sessionmaker[Session], Dispatcher], Loop],
    *,
    pool_size: int,
    collectors: CollectorsFactory | None = None,
) -> int:
    """Run a service's own loop process (not a Celery worker) until SIGTERM or SIGINT."""
    settings = start_process()
    if settings is None:
        return 2
    sessions = make_session_factory(make_engine(settings, pool_size=pool_size))
    app = make_celery(settings, name)
    try:
        loop = build(settings, sessions, Dispatcher(app))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    exporter.start(settings, loop.registries, collectors)

    def stop(signum: int, frame: object) -> None:
        loop.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run()
    app.close()
    return 0
